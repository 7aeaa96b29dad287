"""Task leases on PostgreSQL: what a lease is in SQL (taking, releasing, renewing and claiming
one) and the record of one write transaction with the leases it changed. pg_store.py runs
these statements inside its transactions; leases.py decides when to renew and claim. Nothing
here connects to the database itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from services.common.errors import Aborted
from services.runtime.pg_schema import TASK_COLUMNS, Row
from services.runtime.records import EventRecord, TaskRecord
from services.runtime.states import TaskStatus

__all__ = ["CLAIM", "LEASE_LOST", "OWNED", "RENEW", "WriteTx", "lease_change", "lease_lost"]

# The reason of the Aborted a write gets when another replica has taken the task over.
LEASE_LOST = "LEASE_LOST"
# The statuses of a turn in progress: the only ones a lease is held in.
OWNED = (TaskStatus.PENDING, TaskStatus.RUNNING)


def lease_lost(task_id: str) -> Aborted:
    return Aborted(f"task {task_id} was taken over by another runtime replica", reason=LEASE_LOST)


class WriteTx:
    """One open write transaction: its connection, the events it appended so far, the leases
    it took (task id -> token) or gave up (task id -> None), and the task rows it wrote."""

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self.conn = conn
        self.events: list[EventRecord] = []
        self.leases: dict[str, int | None] = {}
        # Tasks read at rest under the row lock: nobody's turn is in progress, nothing to fence.
        self.unfenced: set[str] = set()
        # The rows it wrote, as records (a held task's row changes only through its holder).
        self.records: dict[str, TaskRecord] = {}

    async def one(self, query: str, params: Sequence[Any] | dict[str, Any]) -> Row | None:
        cursor = await self.conn.execute(query, params)
        return await cursor.fetchone()


def lease_change(old: TaskStatus, new: TaskStatus) -> str:
    """The SET clause a status change adds (parameters `owner` and `lease_seconds`): starting a
    turn takes the lease for this replica, ending one gives it up. Either way the token moves
    on, so a writer still holding the old one is fenced off. "" when the lease does not change."""
    if new in OWNED and old not in OWNED:
        return (", owner = %(owner)s, lease_token = lease_token + 1,"
                " lease_expire = now() + %(lease_seconds)s * interval '1 second'")
    if new not in OWNED and old in OWNED:
        return ", owner = '', lease_token = lease_token + 1, lease_expire = NULL"
    return ""


# Extends the leases a replica holds (arguments: seconds, task ids, their tokens, replica id),
# only where the token is still the one it holds; returns the ids renewed.
RENEW = (
    "UPDATE tasks AS t SET lease_expire = now() + %s * interval '1 second'"
    " FROM unnest(%s::text[], %s::bigint[]) AS h (id, token)"
    " WHERE t.id = h.id AND t.lease_token = h.token AND t.owner = %s RETURNING t.id"
)
# Takes over tasks mid-turn whose lease expired, oldest first (arguments: replica id, seconds,
# how many); rows another replica is claiming at the same moment are skipped, not waited for.
CLAIM = (
    "UPDATE tasks SET owner = %s, lease_token = lease_token + 1, lease_expire = now() + %s * interval '1 second'"
    " WHERE id IN (SELECT id FROM tasks WHERE status IN ('pending', 'running')"
    " AND (lease_expire IS NULL OR lease_expire < now()) ORDER BY create_time LIMIT %s"
    f" FOR UPDATE SKIP LOCKED) RETURNING {TASK_COLUMNS}"
)
