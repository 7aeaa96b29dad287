"""Owns the background asyncio task that runs each DuckLM task's loop.

A task's turn runs apart from the RPC that started it, so a client that goes away does not
stop or break the task; cancelling goes through `cancel`. Unexpected errors fail the task with
an error event instead of vanishing.
"""

from __future__ import annotations

import asyncio
import logging

from services.common.errors import DuckLMError, FailedPrecondition
from services.runtime.loop import RuntimeLoop
from services.runtime.states import FINAL_STATES, TaskStatus
from services.runtime.store import TaskRecord, TaskStore

__all__ = ["TaskRunner"]

log = logging.getLogger(__name__)


class TaskRunner:
    def __init__(self, store: TaskStore, loop: RuntimeLoop) -> None:
        self._store = store
        self._loop = loop
        self._running: dict[str, asyncio.Task[None]] = {}

    def is_running(self, task_id: str) -> bool:
        return task_id in self._running

    async def send_message(self, task_id: str | None, message: str) -> TaskRecord:
        """Opens a task (or reopens `task_id`), records the message and starts the loop."""
        if task_id:
            task = await self._store.get_task(task_id)
            if task.status in FINAL_STATES:
                raise FailedPrecondition(f"task {task_id} is {task.status.value} and cannot take new messages")
            if task.status is not TaskStatus.COMPLETED or self.is_running(task_id):
                raise FailedPrecondition(f"task {task_id} is {task.status.value}; wait until it comes to rest")
        else:
            task = await self._store.create_task(message)
            await self._store.append_event(task.id, "task_created", {"message": message})
        await self._store.append_event(task.id, "user_message", {"text": message})
        await self._store.set_status(task.id, TaskStatus.RUNNING, reason="user_message")
        self.start(task.id)
        return task

    def start(self, task_id: str) -> asyncio.Task[None]:
        job = asyncio.create_task(self._run(task_id), name=f"task-{task_id}")
        self._running[task_id] = job
        return job

    async def wait(self, task_id: str) -> None:
        """Waits for the task's current turn without cancelling it if the waiter is cancelled."""
        job = self._running.get(task_id)
        if job is not None:
            await asyncio.shield(job)

    async def cancel(self, task_id: str, reason: str) -> TaskRecord:
        task = await self._store.get_task(task_id)
        if task.status in FINAL_STATES:
            raise FailedPrecondition(f"task {task_id} is already {task.status.value}")
        job = self._running.pop(task_id, None)
        if job is not None:
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
        return await self._store.set_status(task_id, TaskStatus.CANCELLED, reason=reason or "cancelled")

    async def resume_unfinished(self) -> list[str]:
        """After a restart: picks up every task a crash left pending or running."""
        resumed = []
        for task in await self._store.unfinished_tasks():
            if task.status is TaskStatus.PENDING:
                await self._store.set_status(task.id, TaskStatus.RUNNING, reason="resumed")
            events = await self._store.list_events(task.id, limit=100_000)
            await self._store.append_event(task.id, "task_resumed", {"from_seq": events[-1].seq if events else 0})
            self.start(task.id)
            resumed.append(task.id)
        return resumed

    async def shutdown(self) -> None:
        """Stops running loops without changing their tasks' status, so they resume on restart."""
        jobs = list(self._running.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    async def _run(self, task_id: str) -> None:
        try:
            await self._loop.run_turn(task_id)
        except asyncio.CancelledError:
            raise
        except DuckLMError as exc:
            await self._fail(task_id, exc.code.name.lower(), exc.message)
        except Exception as exc:
            log.exception("task loop crashed", extra={"task_id": task_id})
            await self._fail(task_id, "internal", f"internal error: {exc!r}")
        finally:
            self._running.pop(task_id, None)

    async def _fail(self, task_id: str, code: str, message: str) -> None:
        await self._store.append_event(task_id, "error", {"code": code, "message": message})
        task = await self._store.get_task(task_id)
        if task.status not in FINAL_STATES:
            await self._store.set_status(task_id, TaskStatus.FAILED, reason=code, error=message)
