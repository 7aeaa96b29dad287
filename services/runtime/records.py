"""The runtime's stored records as plain dataclasses, and how stored rows (SQLite's, and with
pg_schema.py's time reader PostgreSQL's) become them.

Read-only shapes: nothing here opens the database or writes to it (that is store.py). An event
keeps its data as stored; `payload` is its typed reading (events.py), taken once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol

from services.runtime.events import Payload, Unknown, parse
from services.runtime.states import TaskStatus

__all__ = ["EventRecord", "ExperienceRecord", "Row", "TaskRecord", "event_from_row", "task_from_row"]


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

    @cached_property
    def payload(self) -> Payload | Unknown:
        """The typed payload; read from `data` once (an event's data is never changed)."""
        return parse(self.type, self.data)


@dataclass(frozen=True)
class ExperienceRecord:
    """One finished turn, as the skills service records it (skills.v1.Experience)."""

    # "task_id:seq of the turn's user message": one experience per turn.
    id: str
    task_id: str
    goal: str
    # The status word the turn ended in: "completed", "failed" or "cancelled".
    outcome: str
    # The turn's steps: directives and unusable outputs (the meaning of TaskRecord.steps).
    steps: int
    tools_used: tuple[str, ...]
    skills_used: tuple[str, ...]
    errors: tuple[str, ...]
    duration_seconds: float
    prompt_tokens: int
    completion_tokens: int
    final_answer: str
    create_time: datetime
    # Bounds the evidence a skill proposal may cite from this turn.
    last_event_seq: int


class Row(Protocol):
    """A stored row read by column name (SQLite's `aiosqlite.Row`, PostgreSQL's dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


# How a stored time becomes a datetime: SQLite keeps ISO text (the default); pg_schema.py passes
# its own for PostgreSQL's timestamptz.
TimeReader = Callable[[Any], datetime]


def task_from_row(row: Row, time: TimeReader = datetime.fromisoformat) -> TaskRecord:
    return TaskRecord(
        id=row["id"],
        status=TaskStatus(row["status"]),
        title=row["title"],
        create_time=time(row["create_time"]),
        update_time=time(row["update_time"]),
        last_reply=row["last_reply"],
        error=row["error"],
        steps=row["steps"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cached_prompt_tokens=row["cached_prompt_tokens"],
        pending_approval_id=row["pending_approval_id"],
    )


def event_from_row(row: Row, time: TimeReader = datetime.fromisoformat) -> EventRecord:
    return EventRecord(
        task_id=row["task_id"],
        seq=row["seq"],
        type=row["type"],
        create_time=time(row["create_time"]),
        data=json.loads(row["data"]),
    )
