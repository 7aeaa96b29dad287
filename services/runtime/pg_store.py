"""The runtime's PostgreSQL access layer: tasks, their append-only event logs and reflections,
for a runtime configured with `DUCKLM_RUNTIME_DATABASE_URL=postgresql://…`.

It keeps every promise of the SQLite store (store.py), against a database other processes may
share: every write is one transaction that first takes the task's row lock (`UPDATE … RETURNING`
or `SELECT … FOR UPDATE`), so a task's events get gap-free seqs and a status change is a
compare-and-set on the status read under that lock. Events reach live subscribers only after
their commit. It never writes outside a transaction, and a database that goes away mid-call
surfaces as `Unavailable` with nothing half-written (PostgreSQL rolls the transaction back).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC
from typing import Any

import psycopg

from services.common.errors import Aborted, FailedPrecondition, NotFound
from services.common.postgres import Migration, Pool, open_pool, unavailable
from services.common.protos import utc_now
from services.runtime.model_text import sanitize
from services.runtime.records import EventRecord, TaskRecord
from services.runtime.states import FINAL_STATES, TaskStatus, check_transition

__all__ = ["MIGRATIONS", "PostgresTaskStore"]

# How many task logs stay in memory (as in store.py).
CACHED_LOGS = 256

MIGRATIONS = (
    Migration(
        1,
        "tasks, events and reflections",
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            title TEXT NOT NULL,
            create_time TIMESTAMPTZ NOT NULL,
            update_time TIMESTAMPTZ NOT NULL,
            last_reply TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            steps INTEGER NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            cached_prompt_tokens BIGINT NOT NULL DEFAULT 0,
            pending_approval_id TEXT NOT NULL DEFAULT '',
            -- The seq of the task's newest event: the next append takes last_seq + 1 under the
            -- row lock, so seqs stay gap-free with several writers.
            last_seq INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX tasks_by_time ON tasks (create_time DESC, id);
        CREATE INDEX tasks_by_status ON tasks (status, create_time);
        CREATE TABLE events (
            task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            create_time TIMESTAMPTZ NOT NULL,
            -- JSON text exactly as written (not jsonb, which would reorder the keys).
            data TEXT NOT NULL,
            PRIMARY KEY (task_id, seq)
        );
        CREATE TABLE reflections (
            id TEXT PRIMARY KEY,
            create_time TIMESTAMPTZ NOT NULL,
            experience_ids TEXT NOT NULL,
            outcome TEXT NOT NULL,
            proposal_id TEXT NOT NULL,
            model_output TEXT NOT NULL
        );
        """,
    ),
)

_TASK_COLUMNS = (
    "id, status, title, create_time, update_time, last_reply, error, steps, prompt_tokens,"
    " completion_tokens, cached_prompt_tokens, pending_approval_id"
)
# Appends one event: takes the task's row lock and its next seq in the same statement.
_APPEND = (
    "WITH t AS (UPDATE tasks SET last_seq = last_seq + 1 WHERE id = %(task_id)s RETURNING last_seq)"
    " INSERT INTO events (task_id, seq, type, create_time, data)"
    " SELECT %(task_id)s, last_seq, %(type)s, %(time)s, %(data)s FROM t RETURNING seq"
)

Row = dict[str, Any]


def _text(value: str) -> str:
    """A string PostgreSQL's TEXT accepts: no NUL (it has none), no lone surrogate."""
    return sanitize(value).replace("\x00", "\ufffd")


def _task(row: Row) -> TaskRecord:
    return TaskRecord(
        id=row["id"],
        status=TaskStatus(row["status"]),
        title=row["title"],
        create_time=row["create_time"].astimezone(UTC),
        update_time=row["update_time"].astimezone(UTC),
        last_reply=row["last_reply"],
        error=row["error"],
        steps=row["steps"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cached_prompt_tokens=row["cached_prompt_tokens"],
        pending_approval_id=row["pending_approval_id"],
    )


def _event(row: Row) -> EventRecord:
    return EventRecord(
        task_id=row["task_id"],
        seq=row["seq"],
        type=row["type"],
        create_time=row["create_time"].astimezone(UTC),
        data=json.loads(row["data"]),
    )


class _Tx:
    """One open write transaction: its connection and the events it appended so far."""

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self.conn = conn
        self.events: list[EventRecord] = []

    async def one(self, query: str, params: Sequence[Any] | dict[str, Any]) -> Row | None:
        cursor = await self.conn.execute(query, params)
        return await cursor.fetchone()


class PostgresTaskStore:
    """Tasks and events in PostgreSQL. Open with `PostgresTaskStore.open(dsn)`."""

    def __init__(self, pool: Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn
        self._subscribers: dict[str, set[asyncio.Queue[EventRecord]]] = defaultdict(set)
        # Logs of recently active tasks, as in store.py. An event committed here extends its
        # cached log only when it follows the cached tail; otherwise the copy is dropped and
        # the next read goes to the database, the source of truth.
        self._logs: OrderedDict[str, list[EventRecord]] = OrderedDict()

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 10) -> PostgresTaskStore:
        return cls(await open_pool(dsn, MIGRATIONS, component="runtime", max_size=pool_size), dsn)

    async def close(self) -> None:
        await self._pool.close()

    # -- plumbing ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Tx]:
        """One write transaction; its events reach the cache and subscribers once committed."""
        try:
            async with self._pool.connection() as conn, conn.transaction():
                tx = _Tx(conn)
                yield tx
        except psycopg.OperationalError as exc:
            raise unavailable(self._dsn, exc) from exc
        for event in tx.events:
            cached = self._logs.get(event.task_id)
            if cached is not None:
                if (cached[-1].seq if cached else 0) + 1 == event.seq:
                    cached.append(event)
                else:
                    del self._logs[event.task_id]
        for event in tx.events:
            self._publish(event)

    async def _rows(self, query: str, params: Sequence[Any]) -> list[Row]:
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall()
        except psycopg.OperationalError as exc:
            raise unavailable(self._dsn, exc) from exc

    async def _locked_task(self, tx: _Tx, task_id: str) -> TaskRecord:
        row = await tx.one(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        return _task(row)

    async def _append(self, tx: _Tx, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
        """Inserts the next event of a task inside `tx` (taking the task's row lock)."""
        # Stored as JSON text with every lone surrogate replaced, as in store.py.
        text = sanitize(json.dumps(data, ensure_ascii=False))
        now = utc_now()
        row = await tx.one(_APPEND, {"task_id": task_id, "type": event_type, "time": now, "data": text})
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        event = EventRecord(task_id=task_id, seq=row["seq"], type=event_type, create_time=now, data=json.loads(text))
        tx.events.append(event)
        return event

    async def _change_status(
        self, tx: _Tx, task: TaskRecord, new: TaskStatus, *, reason: str, error: str = "",
        pending_approval_id: str = "",
    ) -> TaskRecord:
        check_transition(task.status, new)
        row = await tx.one(
            "UPDATE tasks SET status = %s, update_time = %s, error = CASE WHEN %s != '' THEN %s ELSE error END,"
            f" pending_approval_id = %s WHERE id = %s RETURNING {_TASK_COLUMNS}",
            (new.value, utc_now(), error, _text(error), pending_approval_id, task.id),
        )
        assert row is not None  # the row is locked by this transaction
        await self._append(tx, task.id, "status_changed", {"from": task.status.value, "to": new.value, "reason": reason})
        return _task(row)

    # -- tasks -------------------------------------------------------------------------------

    async def create_task(self, title: str) -> TaskRecord:
        async with self._transaction() as tx:
            return await self._insert_task(tx, title)

    async def _insert_task(self, tx: _Tx, title: str) -> TaskRecord:
        now = utc_now()
        task = TaskRecord(
            id=uuid.uuid4().hex, status=TaskStatus.PENDING, title=_text(title[:200]), create_time=now, update_time=now
        )
        await tx.conn.execute(
            "INSERT INTO tasks (id, status, title, create_time, update_time) VALUES (%s, %s, %s, %s, %s)",
            (task.id, task.status.value, task.title, now, now),
        )
        return task

    async def open_task(self, message: dict[str, Any]) -> tuple[TaskRecord, EventRecord]:
        """Creates a task with its first user message, running, in one transaction."""
        async with self._transaction() as tx:
            task = await self._insert_task(tx, str(message["text"]))
            await self._append(tx, task.id, "task_created", {"message": message["text"]})
            user = await self._append(tx, task.id, "user_message", message)
            task = await self._change_status(tx, task, TaskStatus.RUNNING, reason="user_message")
        return task, user

    async def continue_task(self, task_id: str, message: dict[str, Any]) -> tuple[TaskRecord, EventRecord]:
        """Records a new user message and reopens the task only if it is completed (a
        compare-and-set under the row lock); otherwise ABORTED or FAILED_PRECONDITION, as in
        store.py, with nothing recorded."""
        async with self._transaction() as tx:
            task = await self._locked_task(tx, task_id)
            if task.status in FINAL_STATES:
                raise FailedPrecondition(f"task {task_id} is {task.status.value} and cannot take new messages")
            if task.status is TaskStatus.WAITING_APPROVAL:
                raise FailedPrecondition(
                    f"task {task_id} is waiting for approval {task.pending_approval_id}: approve or deny it first"
                )
            if task.status is not TaskStatus.COMPLETED:
                raise Aborted(
                    f"the task is busy ({task.status.value}): send the message once it has come to rest",
                    reason="TASK_BUSY",
                )
            user = await self._append(tx, task_id, "user_message", message)
            task = await self._change_status(tx, task, TaskStatus.RUNNING, reason="user_message")
        return task, user

    async def transition(
        self,
        task_id: str,
        new: TaskStatus,
        *,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
        expect: Collection[TaskStatus] | None = None,
        reason: str = "",
        error: str = "",
        pending_approval_id: str = "",
    ) -> TaskRecord | None:
        """Appends `events`, then moves the task to `new`, in one transaction; with `expect`,
        only if the status read under the row lock is one of them (else None, nothing written)."""
        async with self._transaction() as tx:
            task = await self._locked_task(tx, task_id)
            if expect is not None and task.status not in expect:
                return None
            check_transition(task.status, new)
            for event_type, data in events:
                await self._append(tx, task_id, event_type, data)
            return await self._change_status(
                tx, task, new, reason=reason, error=error, pending_approval_id=pending_approval_id
            )

    async def wait_for_approval(self, task_id: str, data: dict[str, Any]) -> TaskRecord:
        """Records `approval_requested` and moves the task to waiting_approval, in one transaction."""
        task = await self.transition(
            task_id,
            TaskStatus.WAITING_APPROVAL,
            events=[("approval_requested", data)],
            reason="approval_requested",
            pending_approval_id=str(data["approval_id"]),
        )
        assert task is not None
        return task

    async def set_status(
        self, task_id: str, new: TaskStatus, *, reason: str = "", error: str = "", pending_approval_id: str = ""
    ) -> TaskRecord:
        task = await self.transition(task_id, new, reason=reason, error=error, pending_approval_id=pending_approval_id)
        assert task is not None
        return task

    async def fail_task(self, task_id: str, code: str, message: str) -> None:
        """Records an error event and fails the task, in one transaction; only the error is
        recorded when the task already ended (cancelled)."""
        async with self._transaction() as tx:
            task = await self._locked_task(tx, task_id)
            await self._append(tx, task_id, "error", {"code": code, "message": message})
            if task.status not in FINAL_STATES:
                await self._change_status(tx, task, TaskStatus.FAILED, reason=code, error=message)

    async def record_model_call(
        self, task_id: str, data: dict[str, Any], *, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int
    ) -> EventRecord:
        """Appends a model_call event and adds its usage to the task, in one transaction."""
        async with self._transaction() as tx:
            await tx.conn.execute(
                "UPDATE tasks SET steps = steps + 1, prompt_tokens = prompt_tokens + %s,"
                " completion_tokens = completion_tokens + %s, cached_prompt_tokens = cached_prompt_tokens + %s,"
                " update_time = %s WHERE id = %s",
                (prompt_tokens, completion_tokens, cached_prompt_tokens, utc_now(), task_id),
            )
            return await self._append(tx, task_id, "model_call", data)

    async def complete_turn(self, task_id: str, reply: str, *, final: bool, reason: str) -> TaskRecord:
        """Records the assistant's reply and completes the task, in one transaction."""
        reply = sanitize(reply)
        async with self._transaction() as tx:
            task = await self._locked_task(tx, task_id)
            check_transition(task.status, TaskStatus.COMPLETED)
            await self._append(tx, task_id, "assistant_message", {"text": reply, "final": final})
            await tx.conn.execute("UPDATE tasks SET last_reply = %s WHERE id = %s", (_text(reply), task_id))
            return await self._change_status(tx, task, TaskStatus.COMPLETED, reason=reason)

    async def get_task(self, task_id: str) -> TaskRecord:
        rows = await self._rows(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = %s", (task_id,))
        if not rows:
            raise NotFound(f"no task with id {task_id!r}")
        return _task(rows[0])

    async def list_tasks(self, offset: int, limit: int, status: TaskStatus | None = None) -> list[TaskRecord]:
        query, args = f"SELECT {_TASK_COLUMNS} FROM tasks", []
        if status is not None:
            query += " WHERE status = %s"
            args.append(status.value)
        query += " ORDER BY create_time DESC, id LIMIT %s OFFSET %s"
        return [_task(row) for row in await self._rows(query, (*args, limit, offset))]

    async def tasks_in(self, status: TaskStatus) -> list[TaskRecord]:
        rows = await self._rows(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE status = %s ORDER BY create_time", (status.value,)
        )
        return [_task(row) for row in rows]

    async def resumable_tasks(self) -> list[TaskRecord]:
        """Tasks a crash may have caught mid-turn (pending, running or waiting), oldest first."""
        rows = await self._rows(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE status IN (%s, %s, %s) ORDER BY create_time",
            (TaskStatus.PENDING.value, TaskStatus.RUNNING.value, TaskStatus.WAITING_APPROVAL.value),
        )
        return [_task(row) for row in rows]

    async def rename_task(self, task_id: str, title: str) -> TaskRecord:
        async with self._transaction() as tx:
            row = await tx.one(
                f"UPDATE tasks SET title = %s WHERE id = %s RETURNING {_TASK_COLUMNS}", (_text(title[:200]), task_id)
            )
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        return _task(row)

    async def delete_task(self, task_id: str) -> None:
        """Deletes a task and its event log (the caller checks it is at rest)."""
        async with self._transaction() as tx:
            row = await tx.one("DELETE FROM tasks WHERE id = %s RETURNING id", (task_id,))
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        self._logs.pop(task_id, None)

    async def record_reflection(self, experience_ids: list[str], outcome: str, proposal_id: str, model_output: str) -> str:
        reflection_id = uuid.uuid4().hex
        async with self._transaction() as tx:
            await tx.conn.execute(
                "INSERT INTO reflections VALUES (%s, %s, %s, %s, %s, %s)",
                (reflection_id, utc_now(), json.dumps(experience_ids), outcome, proposal_id, _text(model_output)),
            )
        return reflection_id

    async def list_reflections(self) -> list[dict[str, Any]]:
        rows = await self._rows("SELECT * FROM reflections ORDER BY create_time", ())
        # The same shape as the SQLite store's rows: times as ISO text.
        return [{**row, "create_time": row["create_time"].astimezone(UTC).isoformat()} for row in rows]

    # -- events ------------------------------------------------------------------------------

    async def append_event(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
        """Appends and commits one event (one statement), then wakes the task's live subscribers."""
        async with self._transaction() as tx:
            return await self._append(tx, task_id, event_type, data)

    async def hold_log(self, task_id: str) -> None:
        """Keeps the task's log in memory (a task about to run reads it every step)."""
        if task_id in self._logs:
            self._logs.move_to_end(task_id)
            return
        rows = await self._rows("SELECT * FROM events WHERE task_id = %s ORDER BY seq", (task_id,))
        self._logs[task_id] = [_event(row) for row in rows]
        while len(self._logs) > CACHED_LOGS:
            self._logs.popitem(last=False)

    def forget_log(self, task_id: str) -> None:
        """Drops the in-memory copy of a task's log (another process wrote to it)."""
        self._logs.pop(task_id, None)

    async def list_events(self, task_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[EventRecord]:
        cached = self._logs.get(task_id)
        if cached is not None:
            # seq runs 1, 2, 3… without gaps, so list index = seq - 1.
            return cached[after_seq : after_seq + limit]
        rows = await self._rows(
            "SELECT * FROM events WHERE task_id = %s AND seq > %s ORDER BY seq LIMIT %s", (task_id, after_seq, limit)
        )
        return [_event(row) for row in rows]

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
        """Sends an event to live subscribers without storing it (seq 0): streamed model tokens."""
        self._publish(EventRecord(task_id=task_id, seq=0, type=event_type, create_time=utc_now(), data=data))

    def _publish(self, event: EventRecord) -> None:
        for queue in self._subscribers.get(event.task_id, ()):
            queue.put_nowait(event)
