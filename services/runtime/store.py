"""The runtime's SQLite access layer: tasks and their append-only event logs.

Every event is committed before the loop takes its next step, so a task can be replayed or
resumed from its log. Live subscribers are woken when a task's log grows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from services.common.database import open_database
from services.common.errors import NotFound
from services.common.protos import utc_now
from services.runtime.states import FINAL_STATES, TaskStatus, check_transition

__all__ = ["EventRecord", "TaskRecord", "TaskStore"]

# How many task logs stay in memory.
CACHED_LOGS = 256

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


def _task(row: aiosqlite.Row) -> TaskRecord:
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


def _event(row: aiosqlite.Row) -> EventRecord:
    return EventRecord(
        task_id=row["task_id"],
        seq=row["seq"],
        type=row["type"],
        create_time=datetime.fromisoformat(row["create_time"]),
        data=json.loads(row["data"]),
    )


class TaskStore:
    """Tasks and events in one SQLite file. Open with `TaskStore.open(path)`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._write_lock = asyncio.Lock()
        self._subscribers: dict[str, set[asyncio.Queue[EventRecord]]] = defaultdict(set)
        # In-memory copies of the logs of recently active tasks (least recently used dropped
        # first), so each step does not re-read and re-decode the whole log. SQLite stays the
        # source of truth; this process is its only writer.
        self._logs: OrderedDict[str, list[EventRecord]] = OrderedDict()

    @classmethod
    async def open(cls, path: Path | str) -> TaskStore:
        return cls(await open_database(path, SCHEMA))

    async def close(self) -> None:
        await self._db.close()

    # -- tasks -------------------------------------------------------------------------------

    async def create_task(self, title: str) -> TaskRecord:
        now = utc_now()
        task = TaskRecord(
            id=uuid.uuid4().hex, status=TaskStatus.PENDING, title=title[:200], create_time=now, update_time=now
        )
        async with self._write_lock:
            await self._db.execute(
                "INSERT INTO tasks (id, status, title, create_time, update_time) VALUES (?, ?, ?, ?, ?)",
                (task.id, task.status.value, task.title, now.isoformat(), now.isoformat()),
            )
            await self._db.commit()
        return task

    async def get_task(self, task_id: str) -> TaskRecord:
        async with self._db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        return _task(row)

    async def list_tasks(self, offset: int, limit: int, status: TaskStatus | None = None) -> list[TaskRecord]:
        query, args = "SELECT * FROM tasks", []
        if status is not None:
            query += " WHERE status = ?"
            args.append(status.value)
        query += " ORDER BY create_time DESC, id LIMIT ? OFFSET ?"
        async with self._db.execute(query, (*args, limit, offset)) as cursor:
            return [_task(row) for row in await cursor.fetchall()]

    async def tasks_in(self, status: TaskStatus) -> list[TaskRecord]:
        async with self._db.execute(
            "SELECT * FROM tasks WHERE status = ? ORDER BY create_time", (status.value,)
        ) as cursor:
            return [_task(row) for row in await cursor.fetchall()]

    async def unfinished_tasks(self) -> list[TaskRecord]:
        """Tasks a crash may have interrupted: still pending or running."""
        async with self._db.execute(
            "SELECT * FROM tasks WHERE status IN (?, ?) ORDER BY create_time",
            (TaskStatus.PENDING.value, TaskStatus.RUNNING.value),
        ) as cursor:
            return [_task(row) for row in await cursor.fetchall()]

    async def rename_task(self, task_id: str, title: str) -> TaskRecord:
        await self.get_task(task_id)
        async with self._write_lock:
            await self._db.execute("UPDATE tasks SET title = ? WHERE id = ?", (title[:200], task_id))
            await self._db.commit()
        return await self.get_task(task_id)

    async def delete_task(self, task_id: str) -> None:
        """Deletes a task and its event log (the caller checks it is at rest)."""
        await self.get_task(task_id)
        async with self._write_lock:
            await self._db.execute("DELETE FROM events WHERE task_id = ?", (task_id,))
            await self._db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            await self._db.commit()
        self._logs.pop(task_id, None)

    async def set_status(
        self, task_id: str, new: TaskStatus, *, reason: str = "", error: str = "", pending_approval_id: str = ""
    ) -> TaskRecord:
        """Moves a task to `new` if the state machine allows it, recording a STATUS_CHANGED event."""
        task = await self.get_task(task_id)
        check_transition(task.status, new)
        now = utc_now()
        async with self._write_lock:
            await self._db.execute(
                "UPDATE tasks SET status = ?, update_time = ?, error = CASE WHEN ? != '' THEN ? ELSE error END,"
                " pending_approval_id = ? WHERE id = ?",
                (new.value, now.isoformat(), error, error, pending_approval_id, task_id),
            )
            event = await self._append(
                task_id, "status_changed", {"from": task.status.value, "to": new.value, "reason": reason}
            )
            await self._db.commit()
        self._publish(event)
        return await self.get_task(task_id)

    async def fail_task(self, task_id: str, code: str, message: str) -> None:
        """Records an error event and fails the task, unless it already ended (cancelled)."""
        await self.append_event(task_id, "error", {"code": code, "message": message})
        if (await self.get_task(task_id)).status not in FINAL_STATES:
            await self.set_status(task_id, TaskStatus.FAILED, reason=code, error=message)

    async def record_model_call(
        self, task_id: str, data: dict[str, Any], *, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int
    ) -> EventRecord:
        """Appends a model_call event and adds its usage to the task, in one transaction."""
        async with self._write_lock:
            await self._db.execute(
                "UPDATE tasks SET steps = steps + 1, prompt_tokens = prompt_tokens + ?,"
                " completion_tokens = completion_tokens + ?, cached_prompt_tokens = cached_prompt_tokens + ?,"
                " update_time = ? WHERE id = ?",
                (prompt_tokens, completion_tokens, cached_prompt_tokens, utc_now().isoformat(), task_id),
            )
            event = await self._append(task_id, "model_call", data)
            await self._db.commit()
        self._publish(event)
        return event

    async def complete_turn(self, task_id: str, reply: str, *, final: bool, reason: str) -> TaskRecord:
        """Records the assistant's reply and completes the task, in one transaction."""
        task = await self.get_task(task_id)
        check_transition(task.status, TaskStatus.COMPLETED)
        now = utc_now().isoformat()
        async with self._write_lock:
            message = await self._append(task_id, "assistant_message", {"text": reply, "final": final})
            await self._db.execute(
                "UPDATE tasks SET status = ?, last_reply = ?, update_time = ?, pending_approval_id = '' WHERE id = ?",
                (TaskStatus.COMPLETED.value, reply, now, task_id),
            )
            status = await self._append(
                task_id, "status_changed", {"from": task.status.value, "to": TaskStatus.COMPLETED.value, "reason": reason}
            )
            await self._db.commit()
        self._publish(message)
        self._publish(status)
        return await self.get_task(task_id)

    async def record_reflection(self, experience_ids: list[str], outcome: str, proposal_id: str, model_output: str) -> str:
        reflection_id = uuid.uuid4().hex
        async with self._write_lock:
            await self._db.execute(
                "INSERT INTO reflections VALUES (?, ?, ?, ?, ?, ?)",
                (reflection_id, utc_now().isoformat(), json.dumps(experience_ids), outcome, proposal_id, model_output),
            )
            await self._db.commit()
        return reflection_id

    async def list_reflections(self) -> list[dict[str, Any]]:
        async with self._db.execute("SELECT * FROM reflections ORDER BY create_time") as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    # -- events ------------------------------------------------------------------------------

    async def _append(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
        """Inserts the next event of a task; the caller holds the write lock and commits."""
        cached = self._logs.get(task_id)
        if cached is not None:
            seq = (cached[-1].seq if cached else 0) + 1
        else:
            async with self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE task_id = ?", (task_id,)
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            seq = int(row[0])
        # Stored as the JSON text; the record keeps a decoded copy so readers never share `data`.
        text = json.dumps(data)
        event = EventRecord(task_id=task_id, seq=seq, type=event_type, create_time=utc_now(), data=json.loads(text))
        await self._db.execute(
            "INSERT INTO events (task_id, seq, type, create_time, data) VALUES (?, ?, ?, ?, ?)",
            (task_id, event.seq, event_type, event.create_time.isoformat(), text),
        )
        if cached is not None:
            cached.append(event)
        return event

    async def append_event(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
        """Appends and commits one event, then wakes the task's live subscribers."""
        async with self._write_lock:
            event = await self._append(task_id, event_type, data)
            await self._db.commit()
        self._publish(event)
        return event

    async def hold_log(self, task_id: str) -> None:
        """Keeps the task's log in memory (a task about to run reads it every step)."""
        if task_id in self._logs:
            self._logs.move_to_end(task_id)
            return
        async with self._db.execute("SELECT * FROM events WHERE task_id = ? ORDER BY seq", (task_id,)) as cursor:
            self._logs[task_id] = [_event(row) for row in await cursor.fetchall()]
        while len(self._logs) > CACHED_LOGS:
            self._logs.popitem(last=False)

    async def list_events(self, task_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[EventRecord]:
        cached = self._logs.get(task_id)
        if cached is not None:
            # seq runs 1, 2, 3… without gaps, so list index = seq - 1.
            return cached[after_seq : after_seq + limit]
        async with self._db.execute(
            "SELECT * FROM events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (task_id, after_seq, limit),
        ) as cursor:
            return [_event(row) for row in await cursor.fetchall()]

    # -- live subscription -------------------------------------------------------------------

    def subscribe(self, task_id: str) -> asyncio.Queue[EventRecord]:
        """A queue that receives every event of the task from now on, stored or live-only."""
        queue: asyncio.Queue[EventRecord] = asyncio.Queue()
        self._subscribers[task_id].add(queue)
        return queue

    def unsubscribe(self, task_id: str, queue: asyncio.Queue[EventRecord]) -> None:
        subscribers = self._subscribers.get(task_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[task_id]

    def publish_live(self, task_id: str, event_type: str, data: dict[str, Any]) -> None:
        """Sends an event to live subscribers without storing it (seq 0): streamed model tokens,
        whose full text is stored once in the model_call event."""
        self._publish(EventRecord(task_id=task_id, seq=0, type=event_type, create_time=utc_now(), data=data))

    def _publish(self, event: EventRecord) -> None:
        for queue in self._subscribers.get(event.task_id, ()):
            queue.put_nowait(event)
