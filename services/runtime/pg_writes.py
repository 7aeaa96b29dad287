"""The writing plumbing of the PostgreSQL task store (pg_store.py): one write transaction, and
what it keeps in step with each commit — the leases this replica holds (the fence every write of
a running task checks under the row lock), its copies of held task rows and logs, and the live
subscribers. The statements that append an event, change a status, and do both at a turn's edge
in one round trip are here too; pg_store.py builds the task operations from them. Nothing here
decides what a task operation means, and nothing reaches a subscriber before its commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from services.common.errors import NotFound
from services.common.postgres import unavailable
from services.common.protos import utc_now
from services.runtime.model_text import sanitize
from services.runtime.pg_leases import OWNED, WriteTx, lease_change, lease_lost
from services.runtime.pg_reads import TaskReads
from services.runtime.pg_schema import (
    APPEND,
    CHANGE_STATUS,
    TASK_COLUMNS,
    TURN_EDGE,
    task_from_row,
    text_value,
)
from services.runtime.records import EventRecord, TaskRecord
from services.runtime.states import TaskStatus, check_transition

__all__ = ["PostgresWrites"]


class PostgresWrites(TaskReads):
    """Write transactions and their caches; the attributes are set by PostgresTaskStore."""

    replica_id: str
    lease_seconds: float
    # The newest seq this replica committed of each task it keeps copies of.
    _written: dict[str, int]


    @asynccontextmanager
    async def _transaction(self, *, single: bool = False) -> AsyncIterator[WriteTx]:
        """One write transaction; its events reach the cache and subscribers once committed.
        `single`: the caller runs one statement, which commits by itself (one round trip)."""
        try:
            async with self._pool.connection() as conn:
                if single:
                    tx = WriteTx(conn)
                    yield tx
                else:
                    # Pipelined: BEGIN and the statements whose results are not read go out
                    # together, so a transaction costs a round trip per result read, plus COMMIT.
                    async with conn.pipeline(), conn.transaction():
                        tx = WriteTx(conn)
                        yield tx
        except psycopg.OperationalError as exc:
            # A commit whose answer was lost may have happened: the next reads go to the database.
            self._logs.clear()
            self._records.clear()
            raise await unavailable(self._pool, self._dsn, exc) from exc
        self._records.update(tx.records)
        for task_id, token in tx.leases.items():
            if token is None:
                self._held.pop(task_id, None)
                self._records.pop(task_id, None)
            else:
                self._held[task_id] = token
        for event in tx.events:
            cached = self._logs.get(event.task_id)
            if cached is not None:
                if (cached[-1].seq if cached else 0) + 1 == event.seq:
                    cached.append(event)
                else:
                    del self._logs[event.task_id]
        for event in tx.events:
            if event.task_id in self._records or event.task_id in self._logs:
                self._written[event.task_id] = max(self._written.get(event.task_id, 0), event.seq)
            self.live.publish(event)

    def _heard(self, task_id: str, last_seq: int) -> None:
        """Another replica committed to a task this one keeps copies of: they are dropped (its
        next fenced write tells whether it still holds the task)."""
        if last_seq > self._written.get(task_id, 0):
            self._drop_copies(task_id)

    def _drop_copies(self, task_id: str) -> None:
        self._records.pop(task_id, None)
        self._logs.pop(task_id, None)
        self._written.pop(task_id, None)

    async def _locked_task(self, tx: WriteTx, task_id: str) -> TaskRecord:
        """The task's row, locked for this transaction; fenced while its turn is in progress."""
        row = await tx.one(f"SELECT {TASK_COLUMNS}, last_seq FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        task = task_from_row(row)
        cached = self._logs.get(task_id)
        if cached is not None and (cached[-1].seq if cached else 0) != row["last_seq"]:
            del self._logs[task_id]
        if task.status not in OWNED:
            tx.unfenced.add(task_id)
        elif task_id not in tx.leases and self._held.get(task_id, row["lease_token"]) != row["lease_token"]:
            self._drop_copies(task_id)
            raise lease_lost(task_id)
        return task

    async def _append(self, tx: WriteTx, task_id: str, event_type: str, data: dict[str, Any], *,
                      also: str = "", args: dict[str, Any] | None = None) -> EventRecord:
        """Inserts the next event of a task inside `tx` (taking the task's row lock); `also`:
        more SET clauses of the task's row, with their `args`."""
        # Stored as JSON text with every lone surrogate replaced, as in store.py.
        text = sanitize(json.dumps(data, ensure_ascii=False))
        now = utc_now()
        token = None if task_id in tx.unfenced else tx.leases[task_id] if task_id in tx.leases else self._held.get(task_id)
        params = {"task_id": task_id, "type": event_type, "time": now, "data": text, "token": token, **(args or {})}
        row = await tx.one(APPEND.format(set=also), params)
        if row is None:
            if token is not None and await tx.one("SELECT 1 AS found FROM tasks WHERE id = %s", (task_id,)):
                self._drop_copies(task_id)
                raise lease_lost(task_id)
            raise NotFound(f"no task with id {task_id!r}")
        event = EventRecord(task_id=task_id, seq=row["seq"], type=event_type, create_time=now, data=json.loads(text))
        tx.events.append(event)
        return event

    async def _change_status(
        self, tx: WriteTx, task: TaskRecord, new: TaskStatus, *, reason: str, error: str = "",
        pending_approval_id: str = "", also: str = "", args: dict[str, Any] | None = None,
    ) -> TaskRecord:
        """Moves a task read under the row lock (`_locked_task`) to `new`, with its event."""
        check_transition(task.status, new)
        lease = lease_change(task.status, new)
        now = utc_now()
        data = {"from": task.status.value, "to": new.value, "reason": reason}
        row = await tx.one(CHANGE_STATUS.format(set=also + lease), {
            "status": new.value, "time": now, "error": text_value(error), "pending": pending_approval_id,
            "task_id": task.id, "data": json.dumps(data), "owner": self.replica_id,
            "lease_seconds": self.lease_seconds, **(args or {}),
        })
        assert row is not None  # the row is locked by this transaction
        tx.events.append(EventRecord(task_id=task.id, seq=row["last_seq"], type="status_changed", create_time=now,
                                     data=data))
        if lease:
            tx.leases[task.id] = row["lease_token"] if new in OWNED else None
        tx.records[task.id] = task_from_row(row)
        return tx.records[task.id]

    async def _turn_edge(
        self, task_id: str, old: TaskStatus, new: TaskStatus, event_type: str, data: dict[str, Any], *,
        reason: str, token: int | None, also: str = "", args: dict[str, Any] | None = None,
    ) -> tuple[TaskRecord, EventRecord] | None:
        """`event_type` and the move from `old` to `new` in one statement; None (nothing
        written) when the task is not in `old` or not under `token`: the caller then takes the
        transactional path, which says why."""
        text = sanitize(json.dumps(data, ensure_ascii=False))
        now = utc_now()
        status_data = {"from": old.value, "to": new.value, "reason": reason}
        async with self._transaction(single=True) as tx:
            row = await tx.one(TURN_EDGE.format(set=also + lease_change(old, new)), {
                "to": new.value, "from": old.value, "time": now, "task_id": task_id, "token": token,
                "type": event_type, "data": text, "status_data": json.dumps(status_data),
                "owner": self.replica_id, "lease_seconds": self.lease_seconds, **(args or {}),
            })
            if row is None:
                return None
            seq = row["last_seq"]
            cached = self._logs.get(task_id)
            if cached is not None and (cached[-1].seq if cached else 0) != seq - 2:
                del self._logs[task_id]  # another replica wrote since this copy was taken
            event = EventRecord(task_id=task_id, seq=seq - 1, type=event_type, create_time=now, data=json.loads(text))
            tx.events += [event, EventRecord(task_id=task_id, seq=seq, type="status_changed", create_time=now,
                                             data=status_data)]
            tx.leases[task_id] = row["lease_token"] if new in OWNED else None
            tx.records[task_id] = task_from_row(row)
        return tx.records[task_id], event

    async def _insert_task(self, tx: WriteTx, title: str) -> TaskRecord:
        now = utc_now()
        task = TaskRecord(
            id=uuid.uuid4().hex, status=TaskStatus.PENDING, title=text_value(title[:200]), create_time=now, update_time=now
        )
        await tx.conn.execute(
            "INSERT INTO tasks (id, status, title, create_time, update_time, owner, lease_token, lease_expire)"
            " VALUES (%s, %s, %s, %s, %s, %s, 1, now() + %s * interval '1 second')",
            (task.id, task.status.value, task.title, now, now, self.replica_id, self.lease_seconds),
        )
        tx.leases[task.id] = 1
        tx.records[task.id] = task
        return task
