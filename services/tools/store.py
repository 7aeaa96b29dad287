"""SQLite access layer for approvals and their audit trail (the tools service's only database).

`approvals` holds one row per requested action and its current state (with the pattern a
TASK_PATTERN grant of it would cover); `approval_events` is an append-only log of what happened
to it (requested, approved, denied, withdrawn, used, expired) with who, when and why. Times are Unix seconds (UTC). Every change and its event commit together.

Single-use approvals are consumed by one UPDATE that checks and marks them in the same
statement, so two executions can never both use one approval.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from services.common.database import open_database

__all__ = ["ApprovalRecord", "ApprovalStore", "record_from_row"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
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
    create_time REAL NOT NULL,
    decide_time REAL,
    expire_time REAL,
    use_time REAL,
    decided_by TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    pattern TEXT NOT NULL DEFAULT '',
    pattern_hash TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS approvals_by_action ON approvals (task_id, action_hash, state);
CREATE INDEX IF NOT EXISTS approvals_by_state ON approvals (state, expire_time);
CREATE TABLE IF NOT EXISTS approval_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_events_by_approval ON approval_events (approval_id, seq);
"""
# Columns added after the first release: a database made before them gets them on open.
_ADDED_COLUMNS = {
    "pattern": "ALTER TABLE approvals ADD COLUMN pattern TEXT NOT NULL DEFAULT ''",
    "pattern_hash": "ALTER TABLE approvals ADD COLUMN pattern_hash TEXT NOT NULL DEFAULT ''",
}


@dataclass(frozen=True)
class ApprovalRecord:
    id: str
    task_id: str
    tool_name: str
    arguments: dict[str, Any]
    canonical_action: str
    action_hash: str
    working_directory: str
    policy_version: str
    # PENDING, APPROVED, DENIED, USED or EXPIRED.
    state: str
    # ONCE, TASK or TASK_PATTERN.
    scope: str
    create_time: float
    decide_time: float | None
    expire_time: float | None
    use_time: float | None
    decided_by: str
    reason: str
    # What a TASK_PATTERN grant covers (text for the approver, and its hash); "" if none can.
    pattern: str = ""
    pattern_hash: str = ""


class Columns(Protocol):
    """A row whose columns are read by name (sqlite3.Row, psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


def record_from_row(row: Columns) -> ApprovalRecord:
    """An approval from its row, as either backend returns it (columns by name)."""
    return ApprovalRecord(
        id=row["id"],
        task_id=row["task_id"],
        tool_name=row["tool_name"],
        arguments=json.loads(row["arguments_json"]),
        canonical_action=row["canonical_action"],
        action_hash=row["action_hash"],
        working_directory=row["working_directory"],
        policy_version=row["policy_version"],
        state=row["state"],
        scope=row["scope"],
        create_time=row["create_time"],
        decide_time=row["decide_time"],
        expire_time=row["expire_time"],
        use_time=row["use_time"],
        decided_by=row["decided_by"],
        reason=row["reason"],
        pattern=row["pattern"],
        pattern_hash=row["pattern_hash"],
    )


class ApprovalStore:
    """Approvals in SQLite; one connection, writes serialised by a lock (one transaction each)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._write = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> ApprovalStore:
        db = await open_database(path, SCHEMA)
        async with db.execute("PRAGMA table_info(approvals)") as cursor:
            present = {row["name"] for row in await cursor.fetchall()}
        for column, statement in _ADDED_COLUMNS.items():
            if column not in present:
                await db.execute(statement)
        await db.commit()
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def _one(self, query: str, params: tuple[Any, ...]) -> ApprovalRecord | None:
        async with self._db.execute(query, params) as cursor:
            row = await cursor.fetchone()
        return record_from_row(row) if row else None

    async def _all(self, query: str, params: tuple[Any, ...]) -> list[aiosqlite.Row]:
        async with self._db.execute(query, params) as cursor:
            return list(await cursor.fetchall())

    async def _event(self, approval_id: str, event: str, actor: str, reason: str, time: float) -> None:
        await self._db.execute(
            "INSERT INTO approval_events (approval_id, event, actor, reason, time) VALUES (?, ?, ?, ?, ?)",
            (approval_id, event, actor, reason, time),
        )

    async def insert(self, record: ApprovalRecord, actor: str) -> None:
        async with self._write:
            await self._insert(record, actor)
            await self._db.commit()

    async def insert_pending(self, record: ApprovalRecord, actor: str) -> ApprovalRecord:
        """The PENDING approval of `record`'s task for its action, inserting `record` only where
        there is none; the look-up and the insert are one transaction, so two concurrent requests
        for one action share one approval."""
        async with self._write:
            existing = await self.find(record.task_id, record.action_hash, "PENDING")
            if existing is not None:
                return existing
            await self._insert(record, actor)
            await self._db.commit()
        return record

    async def _insert(self, record: ApprovalRecord, actor: str) -> None:
        """The row and its `requested` event, in the caller's transaction."""
        await self._db.execute(
            "INSERT INTO approvals (id, task_id, tool_name, arguments_json, canonical_action,"
            " action_hash, working_directory, policy_version, state, scope, create_time, pattern,"
            " pattern_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.task_id,
                record.tool_name,
                json.dumps(record.arguments, sort_keys=True, ensure_ascii=False),
                record.canonical_action,
                record.action_hash,
                record.working_directory,
                record.policy_version,
                record.state,
                record.scope,
                record.create_time,
                record.pattern,
                record.pattern_hash,
            ),
        )
        await self._event(record.id, "requested", actor, "", record.create_time)

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        return await self._one("SELECT * FROM approvals WHERE id = ?", (approval_id,))

    async def find(self, task_id: str, action_hash: str, state: str) -> ApprovalRecord | None:
        """The newest approval of this task for this action in `state`."""
        return await self._one(
            "SELECT * FROM approvals WHERE task_id = ? AND action_hash = ? AND state = ?"
            " ORDER BY create_time DESC, id LIMIT 1",
            (task_id, action_hash, state),
        )

    async def find_grant(self, task_id: str, action_hash: str, now: float) -> ApprovalRecord | None:
        """An approved, unexpired task-scope grant of this task for this action."""
        return await self._one(
            "SELECT * FROM approvals WHERE task_id = ? AND action_hash = ? AND state = 'APPROVED'"
            " AND scope = 'TASK' AND expire_time > ? ORDER BY expire_time DESC LIMIT 1",
            (task_id, action_hash, now),
        )

    async def find_pattern_grant(self, task_id: str, pattern_hash: str, now: float) -> ApprovalRecord | None:
        """An approved, unexpired TASK_PATTERN grant of this task for this pattern."""
        return await self._one(
            "SELECT * FROM approvals WHERE task_id = ? AND pattern_hash = ? AND pattern_hash != ''"
            " AND state = 'APPROVED' AND scope = 'TASK_PATTERN' AND expire_time > ?"
            " ORDER BY expire_time DESC LIMIT 1",
            (task_id, pattern_hash, now),
        )

    async def page(self, state: str, task_id: str, offset: int, limit: int) -> list[ApprovalRecord]:
        """Approvals oldest first, optionally of one state and one task."""
        clauses, params = [], []
        if state:
            clauses.append("state = ?")
            params.append(state)
        if task_id:
            clauses.append("task_id = ?")
            params.append(task_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [record_from_row(row) for row in await self._all(
            f"SELECT * FROM approvals {where} ORDER BY create_time, id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )]

    async def events(self, approval_id: str) -> list[dict[str, Any]]:
        """The audit trail of one approval, oldest first."""
        return [dict(row) for row in await self._all(
            "SELECT event, actor, reason, time FROM approval_events WHERE approval_id = ? ORDER BY seq",
            (approval_id,),
        )]

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
        """Moves a PENDING approval to APPROVED or DENIED; None if it was no longer pending. The
        audit event is `event`, or the new state in lower case."""
        async with self._write:
            async with self._db.execute(
                "UPDATE approvals SET state = ?, scope = ?, decide_time = ?, expire_time = ?,"
                " decided_by = ?, reason = ? WHERE id = ? AND state = 'PENDING' RETURNING *",
                (state, scope, now, expire_time, decided_by, reason, approval_id),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                await self._db.rollback()
                return None
            await self._event(approval_id, event or state.lower(), decided_by, reason, now)
            await self._db.commit()
        return record_from_row(row)

    async def consume_once(
        self, approval_id: str, task_id: str, action_hash: str, now: float
    ) -> ApprovalRecord | None:
        """Checks and marks a single-use approval USED in one statement; None if it is not usable."""
        async with self._write:
            async with self._db.execute(
                "UPDATE approvals SET state = 'USED', use_time = ? WHERE id = ? AND task_id = ?"
                " AND action_hash = ? AND state = 'APPROVED' AND scope = 'ONCE' AND expire_time > ?"
                " RETURNING *",
                (now, approval_id, task_id, action_hash, now),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                await self._db.rollback()
                return None
            await self._event(approval_id, "used", task_id, "", now)
            await self._db.commit()
        return record_from_row(row)

    async def record_use(self, approval_id: str, task_id: str, now: float, note: str = "") -> None:
        """Logs one execution under a task-scope grant (its state does not change); `note` says
        which exact action ran when the grant covers a pattern."""
        async with self._write:
            await self._db.execute("UPDATE approvals SET use_time = ? WHERE id = ?", (now, approval_id))
            await self._event(approval_id, "used", task_id, note, now)
            await self._db.commit()

    async def expire_due(self, now: float) -> None:
        """Marks approved approvals whose time has passed EXPIRED (with an event each)."""
        async with self._write:
            async with self._db.execute(
                "UPDATE approvals SET state = 'EXPIRED'"
                " WHERE state = 'APPROVED' AND expire_time <= ? RETURNING id",
                (now,),
            ) as cursor:
                rows = await cursor.fetchall()
            for row in rows:
                await self._event(row["id"], "expired", "system", "", now)
            await self._db.commit()
