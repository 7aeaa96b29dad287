"""The reading half of the PostgreSQL task store (pg_store.py): tasks, logs, reflections and
live subscriptions, read through the pool. It never writes; `PostgresTaskStore` builds on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import psycopg

from services.common.errors import NotFound
from services.common.postgres import Pool, unavailable
from services.runtime.pg_events import LiveEvents
from services.runtime.pg_schema import TASK_COLUMNS, Row, event_from_row, task_from_row
from services.runtime.records import EventRecord, TaskRecord
from services.runtime.states import TaskStatus

__all__ = ["CACHED_LOGS", "TaskReads"]

# How many task logs stay in memory (as in store.py).
CACHED_LOGS = 256


class TaskReads:
    """Reads of tasks and events; the attributes are set by PostgresTaskStore."""

    _pool: Pool
    _dsn: str
    # The leases this replica holds (task id -> token) and its cached logs (see pg_store.py).
    _held: dict[str, int]
    _logs: OrderedDict[str, list[EventRecord]]
    # The last row this replica wrote of each task it holds: while it holds the lease, no one
    # else changes the row's turn (a cancel from elsewhere fences the holder's next write).
    _records: dict[str, TaskRecord]
    live: LiveEvents

    async def _rows(self, query: str, params: Sequence[Any]) -> list[Row]:
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall()
        except psycopg.OperationalError as exc:
            raise await unavailable(self._pool, self._dsn, exc) from exc

    async def get_task(self, task_id: str) -> TaskRecord:
        record = self._records.get(task_id) if task_id in self._held else None
        if record is not None:
            return dataclasses.replace(record)
        rows = await self._rows(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = %s", (task_id,))
        if not rows:
            raise NotFound(f"no task with id {task_id!r}")
        return task_from_row(rows[0])

    async def list_tasks(self, offset: int, limit: int, status: TaskStatus | None = None) -> list[TaskRecord]:
        query, args = f"SELECT {TASK_COLUMNS} FROM tasks", []
        if status is not None:
            query += " WHERE status = %s"
            args.append(status.value)
        query += " ORDER BY create_time DESC, id LIMIT %s OFFSET %s"
        return [task_from_row(row) for row in await self._rows(query, (*args, limit, offset))]

    async def tasks_in(self, status: TaskStatus) -> list[TaskRecord]:
        rows = await self._rows(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE status = %s ORDER BY create_time", (status.value,)
        )
        return [task_from_row(row) for row in rows]

    async def resumable_tasks(self) -> list[TaskRecord]:
        """Tasks a crash may have caught mid-turn (pending, running or waiting), oldest first."""
        rows = await self._rows(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE status IN (%s, %s, %s) ORDER BY create_time",
            (TaskStatus.PENDING.value, TaskStatus.RUNNING.value, TaskStatus.WAITING_APPROVAL.value),
        )
        return [task_from_row(row) for row in rows]

    async def list_reflections(self) -> list[dict[str, Any]]:
        rows = await self._rows("SELECT * FROM reflections ORDER BY create_time", ())
        # The same shape as the SQLite store's rows: times as ISO text.
        return [{**row, "create_time": row["create_time"].astimezone(UTC).isoformat()} for row in rows]

    async def hold_log(self, task_id: str) -> None:
        """Keeps the task's log in memory while this replica holds the task (a task about to
        run reads it every step); another replica's task is always read from the database."""
        if task_id not in self._held:
            return
        if task_id in self._logs:
            self._logs.move_to_end(task_id)
            return
        rows = await self._rows("SELECT * FROM events WHERE task_id = %s ORDER BY seq", (task_id,))
        self._logs[task_id] = [event_from_row(row) for row in rows]
        while len(self._logs) > CACHED_LOGS:
            self._logs.popitem(last=False)

    async def list_events(self, task_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[EventRecord]:
        cached = self._logs.get(task_id) if task_id in self._held else None
        if cached is not None:
            # seq runs 1, 2, 3… without gaps, so list index = seq - 1.
            return cached[after_seq : after_seq + limit]
        return await self._read_events(task_id, after_seq, limit)

    async def _read_events(self, task_id: str, after_seq: int, limit: int) -> list[EventRecord]:
        rows = await self._rows(
            "SELECT * FROM events WHERE task_id = %s AND seq > %s ORDER BY seq LIMIT %s", (task_id, after_seq, limit)
        )
        return [event_from_row(row) for row in rows]

    # -- live subscription -------------------------------------------------------------------

    def subscribe(self, task_id: str) -> asyncio.Queue[EventRecord]:
        """A queue that receives every event of the task from now on, from any replica."""
        return self.live.subscribe(task_id)

    def unsubscribe(self, task_id: str, queue: asyncio.Queue[EventRecord]) -> None:
        self.live.unsubscribe(task_id, queue)

    def publish_live(self, task_id: str, event_type: str, data: dict[str, Any]) -> None:
        """Sends an event to this replica's subscribers without storing it (seq 0): streamed
        model tokens, whose full text is stored once in the model_call event."""
        self.live.publish_live(task_id, event_type, data)
