"""SQLite task store internals: the schema, and what one transaction does on the database
thread (reads, inserts, the events it appends and the status changes it makes). The store
(`store.py`) runs each operation as one such transaction through `sqlite_batches.py`; what a
transaction appends reaches the log cache and subscribers only once committed.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from services.common.errors import NotFound
from services.common.protos import utc_now
from services.runtime.model_text import sanitize
from services.runtime.records import EventRecord, TaskRecord, task_from_row
from services.runtime.states import TaskStatus, check_transition

__all__ = ["SCHEMA", "Transaction"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    title TEXT NOT NULL,
    create_time TEXT NOT NULL,
    update_time TEXT NOT NULL,
    last_reply TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    steps INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_prompt_tokens INTEGER NOT NULL DEFAULT 0,
    pending_approval_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tasks_by_time ON tasks (create_time DESC);
CREATE TABLE IF NOT EXISTS events (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    create_time TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
);
CREATE TABLE IF NOT EXISTS reflections (
    id TEXT PRIMARY KEY,
    create_time TEXT NOT NULL,
    experience_ids TEXT NOT NULL,
    outcome TEXT NOT NULL,
    proposal_id TEXT NOT NULL,
    model_output TEXT NOT NULL
);
"""


class Transaction:
    """What one transaction does, on the database thread: reads, inserts and the events it
    appends (they reach the log cache and subscribers only once committed)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.events: list[EventRecord] = []
        # Tasks whose row this transaction changed: read back at its end for the task cache.
        self.touched: set[str] = set()

    def task(self, task_id: str) -> TaskRecord:
        row = self.db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        return task_from_row(row)

    def insert_task(self, title: str) -> TaskRecord:
        now = utc_now()
        task = TaskRecord(
            id=uuid.uuid4().hex, status=TaskStatus.PENDING, title=sanitize(title[:200]), create_time=now, update_time=now
        )
        self.db.execute(
            "INSERT INTO tasks (id, status, title, create_time, update_time) VALUES (?, ?, ?, ?, ?)",
            (task.id, task.status.value, task.title, now.isoformat(), now.isoformat()),
        )
        self.touched.add(task.id)
        return task

    def append(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
        """Inserts the next event of a task."""
        pending = [event.seq for event in self.events if event.task_id == task_id]
        if pending:
            seq = pending[-1] + 1
        else:
            row = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE task_id = ?", (task_id,)).fetchone()
            seq = int(row[0])
        # Stored as JSON text with every lone surrogate replaced, so no string from a model can
        # fail to encode here or in a client; the record keeps a decoded copy so readers never
        # share `data`.
        text = sanitize(json.dumps(data, ensure_ascii=False))
        event = EventRecord(task_id=task_id, seq=seq, type=event_type, create_time=utc_now(), data=json.loads(text))
        self.db.execute(
            "INSERT INTO events (task_id, seq, type, create_time, data) VALUES (?, ?, ?, ?, ?)",
            (task_id, event.seq, event_type, event.create_time.isoformat(), text),
        )
        self.events.append(event)
        return event

    def change_status(
        self, task: TaskRecord, new: TaskStatus, *, reason: str, error: str = "", pending_approval_id: str = ""
    ) -> None:
        check_transition(task.status, new)
        self.db.execute(
            "UPDATE tasks SET status = ?, update_time = ?, error = CASE WHEN ? != '' THEN ? ELSE error END,"
            " pending_approval_id = ? WHERE id = ?",
            (new.value, utc_now().isoformat(), error, sanitize(error), pending_approval_id, task.id),
        )
        self.touched.add(task.id)
        self.append(task.id, "status_changed", {"from": task.status.value, "to": new.value, "reason": reason})
