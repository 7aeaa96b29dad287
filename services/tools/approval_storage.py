"""What the tools service needs from its approvals store (`ApprovalStorage`, a Protocol), and
`open_approval_store`, which picks the backend from the settings.

Two implementations: `store.ApprovalStore` (one SQLite file, the embedded default) and
`pg_store.PostgresApprovalStore` (PostgreSQL, chosen by `DUCKLM_TOOLS_DATABASE_URL`, shared by
several tools services). Both pass the same suite (tests/storage). Nothing here touches rows.
"""

from __future__ import annotations

from typing import Any, Protocol

from services.tools.config import Settings
from services.tools.pg_store import PostgresApprovalStore
from services.tools.store import ApprovalRecord, ApprovalStore

__all__ = ["ApprovalStorage", "open_approval_store"]


class ApprovalStorage(Protocol):
    """Approvals and their audit trail; every change commits with its audit event, and a
    single-use approval is checked and consumed in one statement (used once, whoever asks)."""

    async def close(self) -> None: ...

    async def insert(self, record: ApprovalRecord, actor: str) -> None: ...

    async def insert_pending(self, record: ApprovalRecord, actor: str) -> ApprovalRecord: ...

    async def get(self, approval_id: str) -> ApprovalRecord | None: ...

    async def find(self, task_id: str, action_hash: str, state: str) -> ApprovalRecord | None: ...

    async def find_grant(self, task_id: str, action_hash: str, now: float) -> ApprovalRecord | None: ...

    async def find_pattern_grant(self, task_id: str, pattern_hash: str, now: float) -> ApprovalRecord | None: ...

    async def page(self, state: str, task_id: str, offset: int, limit: int) -> list[ApprovalRecord]: ...

    async def events(self, approval_id: str) -> list[dict[str, Any]]: ...

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
    ) -> ApprovalRecord | None: ...

    async def consume_once(
        self, approval_id: str, task_id: str, action_hash: str, now: float
    ) -> ApprovalRecord | None: ...

    async def record_use(self, approval_id: str, task_id: str, now: float, note: str = "") -> None: ...

    async def expire_due(self, now: float) -> None: ...


async def open_approval_store(settings: Settings) -> ApprovalStorage:
    """PostgreSQL when `database_url` is set, else the SQLite file at `database_path`."""
    if settings.database_url:
        return await PostgresApprovalStore.open(settings.database_url)
    return await ApprovalStore.open(settings.database_path)
