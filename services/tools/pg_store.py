"""The tools service's PostgreSQL access layer for approvals and their audit trail, for a
service configured with `DUCKLM_TOOLS_DATABASE_URL=postgresql://…` (several tools services may
share it).

The same tables and promises as the SQLite store (store.py): every change commits with its
audit event in one transaction, and a single-use approval is checked and marked USED by one
`UPDATE … RETURNING`, so of any number of replicas asking at once exactly one gets it. It never
writes outside a transaction; a database that went away is `Unavailable`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from services.common.postgres import Migration, Pool, open_pool, unavailable
from services.tools.store import ApprovalRecord, record_from_row

__all__ = ["MIGRATIONS", "PostgresApprovalStore"]

MIGRATIONS = (
    Migration(
        1,
        "approvals and their audit trail",
        """
        CREATE TABLE approvals (
            id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL,
            tool_name TEXT NOT NULL,
            arguments_json TEXT NOT NULL,
            canonical_action TEXT NOT NULL,
            action_hash TEXT NOT NULL,
            working_directory TEXT NOT NULL,
            policy_version TEXT NOT NULL,
            state TEXT NOT NULL,
            scope TEXT NOT NULL,
            create_time DOUBLE PRECISION NOT NULL,
            decide_time DOUBLE PRECISION,
            expire_time DOUBLE PRECISION,
            use_time DOUBLE PRECISION,
            decided_by TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            pattern TEXT NOT NULL DEFAULT '',
            pattern_hash TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX approvals_by_action ON approvals (task_id, action_hash, state);
        CREATE INDEX approvals_by_state ON approvals (state, expire_time);
        CREATE TABLE approval_events (
            seq BIGSERIAL PRIMARY KEY,
            approval_id TEXT NOT NULL REFERENCES approvals (id),
            event TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT NOT NULL,
            time DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX approval_events_by_approval ON approval_events (approval_id, seq);
        """,
    ),
)

Row = dict[str, Any]
Conn = psycopg.AsyncConnection[Row]


def _text(value: str) -> str:
    # PostgreSQL's TEXT holds no NUL; approvals are shown to people, so U+FFFD marks where it was.
    return value.replace("\x00", "\ufffd")


class PostgresApprovalStore:
    """Approvals in PostgreSQL. Open with `PostgresApprovalStore.open(dsn)`."""

    def __init__(self, pool: Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn

    @classmethod
    async def open(cls, dsn: str) -> PostgresApprovalStore:
        return cls(await open_pool(dsn, MIGRATIONS, component="tools", max_size=5), dsn)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise await unavailable(self._pool, self._dsn, exc) from exc

    async def _one(self, query: str, params: tuple[Any, ...]) -> ApprovalRecord | None:
        async with self._transaction() as conn:
            cursor = await conn.execute(query, params)
            row = await cursor.fetchone()
        return record_from_row(row) if row else None

    async def _all(self, query: str, params: tuple[Any, ...]) -> list[Row]:
        async with self._transaction() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    @staticmethod
    async def _event(conn: Conn, approval_id: str, event: str, actor: str, reason: str, time: float) -> None:
        await conn.execute(
            "INSERT INTO approval_events (approval_id, event, actor, reason, time) VALUES (%s, %s, %s, %s, %s)",
            (approval_id, event, _text(actor), _text(reason), time),
        )

    async def insert(self, record: ApprovalRecord, actor: str) -> None:
        async with self._transaction() as conn:
            await self._insert(conn, record, actor)

    async def insert_pending(self, record: ApprovalRecord, actor: str) -> ApprovalRecord:
        """The PENDING approval of `record`'s task for its action, inserting `record` only where
        there is none. A transaction lock on (task, action) makes the look-up and the insert
        one step for every replica, so concurrent requests for one action share one approval."""
        async with self._transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{record.task_id} {record.action_hash}",))
            cursor = await conn.execute(
                "SELECT * FROM approvals WHERE task_id = %s AND action_hash = %s AND state = 'PENDING'"
                " ORDER BY create_time DESC, id LIMIT 1",
                (record.task_id, record.action_hash),
            )
            existing = await cursor.fetchone()
            if existing is not None:
                return record_from_row(existing)
            await self._insert(conn, record, actor)
        return record

    async def _insert(self, conn: Conn, record: ApprovalRecord, actor: str) -> None:
        """The row and its `requested` event, in the caller's transaction."""
        await conn.execute(
            "INSERT INTO approvals (id, task_id, tool_name, arguments_json, canonical_action,"
            " action_hash, working_directory, policy_version, state, scope, create_time, pattern,"
            " pattern_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                record.id,
                record.task_id,
                record.tool_name,
                # JSON escapes a NUL inside a string as \u0000, so the arguments survive whole.
                json.dumps(record.arguments, sort_keys=True, ensure_ascii=False),
                _text(record.canonical_action),
                record.action_hash,
                _text(record.working_directory),
                record.policy_version,
                record.state,
                record.scope,
                record.create_time,
                _text(record.pattern),
                record.pattern_hash,
            ),
        )
        await self._event(conn, record.id, "requested", actor, "", record.create_time)

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        return await self._one("SELECT * FROM approvals WHERE id = %s", (approval_id,))

    async def find(self, task_id: str, action_hash: str, state: str) -> ApprovalRecord | None:
        """The newest approval of this task for this action in `state`."""
        return await self._one(
            "SELECT * FROM approvals WHERE task_id = %s AND action_hash = %s AND state = %s"
            " ORDER BY create_time DESC, id LIMIT 1",
            (task_id, action_hash, state),
        )

    async def find_grant(self, task_id: str, action_hash: str, now: float) -> ApprovalRecord | None:
        """An approved, unexpired task-scope grant of this task for this action."""
        return await self._one(
            "SELECT * FROM approvals WHERE task_id = %s AND action_hash = %s AND state = 'APPROVED'"
            " AND scope = 'TASK' AND expire_time > %s ORDER BY expire_time DESC LIMIT 1",
            (task_id, action_hash, now),
        )

    async def find_pattern_grant(self, task_id: str, pattern_hash: str, now: float) -> ApprovalRecord | None:
        """An approved, unexpired TASK_PATTERN grant of this task for this pattern."""
        return await self._one(
            "SELECT * FROM approvals WHERE task_id = %s AND pattern_hash = %s AND pattern_hash != ''"
            " AND state = 'APPROVED' AND scope = 'TASK_PATTERN' AND expire_time > %s"
            " ORDER BY expire_time DESC LIMIT 1",
            (task_id, pattern_hash, now),
        )

    async def page(self, state: str, task_id: str, offset: int, limit: int) -> list[ApprovalRecord]:
        """Approvals oldest first, optionally of one state and one task."""
        rows = await self._all(
            "SELECT * FROM approvals WHERE (%s = '' OR state = %s) AND (%s = '' OR task_id = %s)"
            " ORDER BY create_time, id LIMIT %s OFFSET %s",
            (state, state, task_id, task_id, limit, offset),
        )
        return [record_from_row(row) for row in rows]

    async def events(self, approval_id: str) -> list[dict[str, Any]]:
        """The audit trail of one approval, oldest first."""
        return await self._all(
            "SELECT event, actor, reason, time FROM approval_events WHERE approval_id = %s ORDER BY seq",
            (approval_id,),
        )

    async def decide(
        self,
        approval_id: str,
        *,
        state: str,
        scope: str,
        now: float,
        expire_time: float | None,
        decided_by: str,
        reason: str,
        event: str = "",
    ) -> ApprovalRecord | None:
        """Moves a PENDING approval to APPROVED or DENIED; None if it was no longer pending."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "UPDATE approvals SET state = %s, scope = %s, decide_time = %s, expire_time = %s,"
                " decided_by = %s, reason = %s WHERE id = %s AND state = 'PENDING' RETURNING *",
                (state, scope, now, expire_time, _text(decided_by), _text(reason), approval_id),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            await self._event(conn, approval_id, event or state.lower(), decided_by, reason, now)
        return record_from_row(row)

    async def consume_once(
        self, approval_id: str, task_id: str, action_hash: str, now: float
    ) -> ApprovalRecord | None:
        """Checks and marks a single-use approval USED in one statement; None if it is not usable.
        A second replica's UPDATE waits on the row lock, then finds it USED and matches nothing."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "UPDATE approvals SET state = 'USED', use_time = %s WHERE id = %s AND task_id = %s"
                " AND action_hash = %s AND state = 'APPROVED' AND scope = 'ONCE' AND expire_time > %s"
                " RETURNING *",
                (now, approval_id, task_id, action_hash, now),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            await self._event(conn, approval_id, "used", task_id, "", now)
        return record_from_row(row)

    async def record_use(self, approval_id: str, task_id: str, now: float, note: str = "") -> None:
        """Logs one execution under a task-scope grant (its state does not change)."""
        async with self._transaction() as conn:
            await conn.execute("UPDATE approvals SET use_time = %s WHERE id = %s", (now, approval_id))
            await self._event(conn, approval_id, "used", task_id, note, now)

    async def expire_due(self, now: float) -> None:
        """Marks approved approvals whose time has passed EXPIRED (with an event each)."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "UPDATE approvals SET state = 'EXPIRED' WHERE state = 'APPROVED' AND expire_time <= %s RETURNING id",
                (now,),
            )
            for row in await cursor.fetchall():
                await self._event(conn, row["id"], "expired", "system", "", now)
