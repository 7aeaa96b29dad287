"""The lease keeper of a runtime replica on PostgreSQL: keeps this replica's task leases alive,
takes over the tasks of replicas that died, and resumes its own tasks whose turn stopped
because the database went away.

Each tick (a third of the lease time): renew the held leases (a lease found lost is forgotten
once no local turn can still write with it); claim tasks whose lease expired; then resume,
from their logs exactly as after a crash (recovery.reconcile), the held tasks no local turn is
running. It never changes a task by itself: the store's fenced writes and the runner do.
"""

from __future__ import annotations

import asyncio
import logging

from services.common.errors import DuckLMError
from services.runtime.pg_store import PostgresTaskStore
from services.runtime.recovery import reconcile
from services.runtime.runner import TaskRunner
from services.runtime.states import TaskStatus

__all__ = ["LeaseKeeper"]

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, store: PostgresTaskStore, runner: TaskRunner) -> None:
        self._store = store
        self._runner = runner
        self.interval = store.lease_seconds / 3
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep(), name="lease-keeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _keep(self) -> None:
        while True:
            try:
                await self.tick()
            except DuckLMError as exc:  # the database is away: the next tick tries again
                log.warning("lease keeping paused: %s", exc.message)
            except Exception:
                log.exception("lease keeping failed; trying again")
            await asyncio.sleep(self.interval)

    async def tick(self) -> list[str]:
        """One round; returns the tasks it (re)started."""
        for task_id in await self._store.renew_leases():
            log.warning("lost the lease of task %s to another replica", task_id, extra={"task_id": task_id})
            if not self._runner.is_running(task_id):
                self._store.forget_lease(task_id)
        claimed = await self._store.claim_expired()
        for task in claimed:
            log.warning("took over task %s (its lease expired)", task.id, extra={"task_id": task.id})
        started = []
        for task_id in self._store.held_tasks():
            if self._runner.is_running(task_id):
                continue
            task = await self._store.get_task(task_id)
            if task.status not in (TaskStatus.PENDING, TaskStatus.RUNNING):
                continue
            if await reconcile(self._store, task):
                self._runner.start(task_id, "recovery")
                started.append(task_id)
        return started
