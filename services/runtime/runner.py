"""Owns the background asyncio task that runs each DuckLM task's loop.

A task's turn runs apart from the RPC that started it, so a client that goes away does not
stop or break the task; cancelling goes through `cancel`. Unexpected errors fail the task with
an error event instead of vanishing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from services.common.errors import DuckLMError, FailedPrecondition
from services.runtime.experience import experience_from_turn
from services.runtime.loop import RuntimeLoop
from services.runtime.metrics import observe_task_outcome
from services.runtime.peers import PeerError
from services.runtime.states import FINAL_STATES, TaskStatus
from services.runtime.store import TaskRecord, TaskStore

__all__ = ["TaskRunner"]

log = logging.getLogger(__name__)


class TaskRunner:
    def __init__(self, store: TaskStore, loop: RuntimeLoop, *, approval_poll_seconds: float = 0.5) -> None:
        self._store = store
        self._loop = loop
        self._running: dict[str, asyncio.Task[None]] = {}
        self._poll = approval_poll_seconds
        self._watcher: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # Called with each recorded experience id (reflection, when configured).
        self.after_experience: Callable[[str], Coroutine[Any, Any, None]] | None = None

    def is_running(self, task_id: str) -> bool:
        return task_id in self._running

    async def send_message(
        self, task_id: str | None, message: str, skill: str = "", extras: dict[str, Any] | None = None
    ) -> tuple[TaskRecord, int]:
        """Opens a task (or reopens `task_id`), records the message and starts the loop.
        Returns the task and the seq of the user-message event."""
        if task_id:
            task = await self._store.get_task(task_id)
            if task.status in FINAL_STATES:
                raise FailedPrecondition(f"task {task_id} is {task.status.value} and cannot take new messages")
            if task.status is not TaskStatus.COMPLETED or self.is_running(task_id):
                raise FailedPrecondition(f"task {task_id} is {task.status.value}; wait until it comes to rest")
        else:
            task = await self._store.create_task(message)
            await self._store.append_event(task.id, "task_created", {"message": message})
        # extras: what a client adds to this turn (client_functions.py), recorded with the message.
        data: dict[str, Any] = {"text": message, **(extras or {})}
        if skill:
            data["skill"] = skill
        user_event = await self._store.append_event(task.id, "user_message", data)
        await self._store.set_status(task.id, TaskStatus.RUNNING, reason="user_message")
        self.start(task.id)
        return task, user_event.seq

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
        cancelled = await self._store.set_status(task_id, TaskStatus.CANCELLED, reason=reason or "cancelled")
        if task.pending_approval_id and self._loop.peers is not None:
            # Nothing will act on that approval any more: withdraw it so no one approves in vain.
            try:
                await self._loop.peers.deny_approval(task.pending_approval_id, "the task was cancelled")
            except PeerError as exc:
                log.warning("could not withdraw approval %s: %s", task.pending_approval_id, exc, extra={"task_id": task_id})
        await self._record_experience(task_id)
        return cancelled

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

    def watch_approvals(self) -> None:
        """Starts the background check that resumes tasks whose approval a human decided."""
        if self._loop.peers is not None and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_approvals(), name="approval-watcher")

    async def _watch_approvals(self) -> None:
        while True:
            try:
                await self.check_approvals()
            except Exception:
                log.exception("checking approvals failed; trying again")
            await asyncio.sleep(self._poll)

    async def check_approvals(self) -> list[str]:
        """Resumes each waiting task whose approval is no longer pending. Returns their ids."""
        peers = self._loop.peers
        assert peers is not None
        resumed = []
        for task in await self._store.tasks_in(TaskStatus.WAITING_APPROVAL):
            if self.is_running(task.id) or not task.pending_approval_id:
                continue
            try:
                approval = await peers.get_approval(task.pending_approval_id)
            except PeerError as exc:
                log.warning("cannot read approval %s: %s", task.pending_approval_id, exc, extra={"task_id": task.id})
                continue
            if approval.state == "pending":
                continue
            # "used" means it was approved and then consumed: for this task it counts as approved.
            decision = "approved" if approval.state in ("approved", "used") else approval.state
            await self._store.append_event(
                task.id,
                "approval_decided",
                {"approval_id": approval.id, "decision": decision, "reason": approval.reason, "decided_by": approval.decided_by},
            )
            await self._store.set_status(task.id, TaskStatus.RUNNING, reason=f"approval {decision}")
            self.start(task.id)
            resumed.append(task.id)
        return resumed

    async def shutdown(self) -> None:
        """Stops running loops without changing their tasks' status, so they resume on restart."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        for pending in list(self._background):
            await asyncio.gather(pending, return_exceptions=True)
        jobs = list(self._running.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    async def _run(self, task_id: str) -> None:
        try:
            await self._store.hold_log(task_id)
            await self._loop.run_turn(task_id)
        except asyncio.CancelledError:
            raise
        except DuckLMError as exc:
            await self._store.fail_task(task_id, exc.code.name.lower(), exc.message)
        except PeerError as exc:
            await self._store.fail_task(task_id, exc.code.lower(), f"{exc.service} service: {exc.message}")
        except Exception as exc:
            log.exception("task loop crashed", extra={"task_id": task_id})
            await self._store.fail_task(task_id, "internal", f"internal error: {exc!r}")
        finally:
            self._running.pop(task_id, None)
        observe_task_outcome((await self._store.get_task(task_id)).status.value)
        # Recorded in the background: the turn has come to rest and its caller need not wait.
        self._in_background(self._record_experience(task_id))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        job: asyncio.Task[None] = asyncio.create_task(work)
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _record_experience(self, task_id: str) -> None:
        """Records a finished turn with the skills service; a failure is logged, never fatal."""
        peers = self._loop.peers
        if peers is None:
            return
        task = await self._store.get_task(task_id)
        experience = experience_from_turn(task, await self._store.list_events(task_id, limit=1_000_000))
        if experience is None:
            return
        try:
            experience_id = await peers.record_experience(experience)
        except PeerError as exc:
            log.warning("could not record experience: %s", exc, extra={"task_id": task_id})
            return
        log.info("experience %s recorded", experience_id, extra={"task_id": task_id})
        if self.after_experience is not None:
            self._in_background(self.after_experience(experience_id))
