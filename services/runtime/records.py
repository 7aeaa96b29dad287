"""The runtime's stored records as plain dataclasses, and how SQLite rows become them.

Read-only shapes: nothing here opens the database or writes to it (that is store.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiosqlite

from services.runtime.states import TaskStatus

__all__ = ["EventRecord", "TaskRecord", "event_from_row", "task_from_row"]


@dataclass
class TaskRecord:
    id: str
    status: TaskStatus
    title: str
    create_time: datetime
    update_time: datetime
    last_reply: str = ""
    error: str = ""
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    pending_approval_id: str = ""


@dataclass
class EventRecord:
    task_id: str
    seq: int
    type: str
    create_time: datetime
    data: dict[str, Any] = field(default_factory=dict)


def task_from_row(row: aiosqlite.Row) -> TaskRecord:
    return TaskRecord(
        id=row["id"],
        status=TaskStatus(row["status"]),
        title=row["title"],
        create_time=datetime.fromisoformat(row["create_time"]),
        update_time=datetime.fromisoformat(row["update_time"]),
        last_reply=row["last_reply"],
        error=row["error"],
        steps=row["steps"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cached_prompt_tokens=row["cached_prompt_tokens"],
        pending_approval_id=row["pending_approval_id"],
    )


def event_from_row(row: aiosqlite.Row) -> EventRecord:
    return EventRecord(
        task_id=row["task_id"],
        seq=row["seq"],
        type=row["type"],
        create_time=datetime.fromisoformat(row["create_time"]),
        data=json.loads(row["data"]),
    )
