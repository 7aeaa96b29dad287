"""What the runtime needs from its task store (`TaskStorage`, a Protocol), and
`open_task_store`, which picks the backend from the settings.

Two implementations: `store.TaskStore` (one SQLite file, the embedded default) and
`pg_store.PostgresTaskStore` (PostgreSQL, chosen by `DUCKLM_RUNTIME_DATABASE_URL`). Both pass the
same suite (tests/storage). Nothing here reads or writes tasks itself.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from services.runtime.config import Settings
from services.runtime.pg_store import PostgresTaskStore
from services.runtime.records import EventRecord, TaskRecord
from services.runtime.states import TaskStatus
from services.runtime.store import TaskStore
from services.runtime.store_rules import StatusShortcuts

__all__ = ["TaskStorage", "open_task_store"]


class TaskStorage(StatusShortcuts, Protocol):
    """Tasks and their append-only event logs. Every event is committed before the call that
    wrote it returns; a status change and the events that cause it commit together; live
    subscribers see an event only after its commit. `transition`, `wait_for_approval` and
    `set_status` are StatusShortcuts' (store_rules.py)."""

    async def close(self) -> None: ...

    async def create_task(self, title: str) -> TaskRecord: ...

    async def open_task(self, message: dict[str, Any]) -> tuple[TaskRecord, EventRecord]: ...

    async def continue_task(self, task_id: str, message: dict[str, Any]) -> tuple[TaskRecord, EventRecord]: ...

    async def fail_task(self, task_id: str, code: str, message: str) -> None: ...

    async def record_model_call(
        self, task_id: str, data: dict[str, Any], *, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int
    ) -> EventRecord: ...

    async def record_step(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord: ...

    async def complete_turn(self, task_id: str, reply: str, *, final: bool, reason: str) -> TaskRecord: ...

    async def get_task(self, task_id: str) -> TaskRecord: ...

    async def list_tasks(self, offset: int, limit: int, status: TaskStatus | None = None) -> list[TaskRecord]: ...

    async def tasks_in(self, status: TaskStatus) -> list[TaskRecord]: ...

    async def resumable_tasks(self) -> list[TaskRecord]: ...

    async def rename_task(self, task_id: str, title: str) -> TaskRecord: ...

    async def delete_task(self, task_id: str) -> None: ...

    async def record_reflection(
        self, experience_ids: list[str], outcome: str, proposal_id: str, model_output: str
    ) -> str: ...

    async def list_reflections(self) -> list[dict[str, Any]]: ...

    async def append_event(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord: ...

    async def hold_log(self, task_id: str) -> None: ...

    async def list_events(self, task_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[EventRecord]: ...

    def subscribe(self, task_id: str) -> asyncio.Queue[EventRecord]: ...

    def unsubscribe(self, task_id: str, queue: asyncio.Queue[EventRecord]) -> None: ...

    def publish_live(self, task_id: str, event_type: str, data: dict[str, Any]) -> None: ...


async def open_task_store(settings: Settings) -> TaskStorage:
    """PostgreSQL when `database_url` is set, else the SQLite file at `database`."""
    if settings.database_url:
        return await PostgresTaskStore.open(
            settings.database_url, pool_size=settings.database_pool_size, replica_id=settings.replica_id,
            lease_seconds=settings.lease_seconds,
        )
    return await TaskStore.open(settings.database)
