"""Owns the background asyncio task that runs each DuckLM task's loop.

A task's turn runs apart from the RPC that started it, so a client that goes away does not
stop or break the task; cancelling goes through `cancel`. Unexpected errors fail the task with
an error event instead of vanishing.

A task waiting for an approval resumes when the tools service's WatchApprovals stream reports the
decision. Whenever the stream (re)connects, and whenever a turn comes to rest waiting, the
approvals waited for are read once (GetApproval), so a decision made while no stream was open,
before a restart, or before the wait was recorded is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from services.common.errors import Aborted, DuckLMError, FailedPrecondition, NotFound, Unavailable
from services.common.postgres import DATABASE_UNAVAILABLE
from services.common.task_trace import task_span
from services.runtime.experience import experience_from_turn
from services.runtime.metrics import observe_task_outcome
from services.runtime.peers import ApprovalInfo, PeerError, Peers
from services.runtime.recovery import reconcile
from services.runtime.states import FINAL_STATES, TaskStatus
from services.runtime.storage import TaskStorage
from services.runtime.store import TaskRecord

__all__ = ["TaskRunner", "Turns"]

log = logging.getLogger(__name__)

# Why a store may stop a turn that did nothing wrong: its database went away, or (PostgreSQL,
# several replicas) another replica holds the task's lease now (pg_store.LEASE_LOST).
# How often the approvals of waiting tasks are read besides the stream (see _resync_approvals).
RESYNC_SECONDS = 5.0
HANDED_OVER = (DATABASE_UNAVAILABLE, "LEASE_LOST")


class Turns(Protocol):
    """What the runner drives: the loop (services/runtime/loop.py), or a fake of it in tests."""

    @property
    def peers(self) -> Peers | None: ...

    async def run_turn(self, task_id: str) -> None: ...


class TaskRunner:
    def __init__(
        self, store: TaskStorage, loop: Turns, *, approval_retry_seconds: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, resync_seconds: float = RESYNC_SECONDS,
    ) -> None:
        self._store = store
        self._loop = loop
        self._running: dict[str, asyncio.Task[None]] = {}
        # How long to wait before reconnecting a dropped approvals stream (`sleep` is injected
        # so tests need no real clock).
        self._retry = approval_retry_seconds
        self._resyncer: asyncio.Task[None] | None = None
        self._resync = resync_seconds
        self._sleep = sleep
        self._watcher: asyncio.Task[None] | None = None
        # Set while an approvals stream is open and the resync after it is done.
        self.watching = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        # Called with each recorded experience id (reflection, when configured).
        self.after_experience: Callable[[str], Coroutine[Any, Any, None]] | None = None

    def is_running(self, task_id: str) -> bool:
        return task_id in self._running

    async def send_message(
        self, task_id: str | None, message: str, skill: str = "", extras: dict[str, Any] | None = None,
        *, memory: bool = True,
    ) -> tuple[TaskRecord, int]:
        """Opens a task (or reopens `task_id`), records the message and starts the loop.
        Returns the task and the seq of the user-message event. With `memory` false the turn
        reads and writes no memory (the loop's memory steps read the flag from the event).
        `extras`: what a client adds to this turn (client_functions.py), recorded with the message.

        Reopening is one compare-and-set in the store: of two concurrent messages to a task at
        rest, one wins; the other gets ABORTED ("the task is busy") and is not recorded."""
        data: dict[str, Any] = {"text": message, **(extras or {})}
        if skill:
            data["skill"] = skill
        if not memory:
            data["memory"] = False
        if task_id:
            # No check of the running job here: the store's status is the one gate. A job whose
            # turn completed may still be finishing up; it writes nothing more to the task.
            task, user_event = await self._store.continue_task(task_id, data)
        else:
            task, user_event = await self._store.open_task(data)
        self.start(task.id)
        return task, user_event.seq

    def start(self, task_id: str, cause: str = "message") -> asyncio.Task[None]:
        """Runs the task's turn in the background. `cause`: why it runs now (a message, an
        approval's decision, a resume after a restart), recorded on the turn's span."""
        job = asyncio.create_task(self._traced(task_id, cause), name=f"task-{task_id}")
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
        """After a restart: reconciles every task's status with its log (an open approval means
        waiting_approval, whatever the crash left) and resumes each task still being worked on."""
        resumed = []
        for task in await self._store.resumable_tasks():
            if await reconcile(self._store, task):
                self.start(task.id, "recovery")
                resumed.append(task.id)
        return resumed

    def watch_approvals(self) -> None:
        """Starts the background watch that resumes tasks whose approval a human decided."""
        if self._loop.peers is not None and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_approvals(), name="approval-watcher")
            self._resyncer = asyncio.create_task(self._resync_approvals(), name="approval-resync")

    async def _resync_approvals(self) -> None:
        """Reads the approvals of waiting tasks every `resync_seconds` as well: a stream carries the
        decisions of the tools service it is connected to, and with several tools replicas on one
        database a decision taken on another one reaches this runtime only this way."""
        while True:
            # A real timer, not the injected retry sleep: this is a slow safety net, not a retry.
            await asyncio.sleep(self._resync)
            try:
                await self.check_approvals()
            except Exception:
                log.exception("reading the approvals of waiting tasks failed; trying again")

    async def _watch_approvals(self) -> None:
        peers = self._loop.peers
        assert peers is not None
        while True:
            try:
                # Closed however this ends, so no stream is left open behind a failed resync.
                async with contextlib.aclosing(await peers.watch_approvals()) as changes:
                    # Subscribed: decisions from now on arrive on the stream; earlier ones are read once.
                    await self.check_approvals()
                    self.watching.set()
                    async for approval in changes:
                        await self.approval_changed(approval)
            except PeerError as exc:
                log.warning("the approvals stream dropped (%s); reconnecting", exc)
            except Exception:
                log.exception("watching approvals failed; reconnecting")
            self.watching.clear()
            await self._sleep(self._retry)

    async def check_approvals(self) -> list[str]:
        """Resumes each waiting task whose approval is no longer pending. Returns their ids."""
        resumed = []
        for task in await self._store.tasks_in(TaskStatus.WAITING_APPROVAL):
            if await self._check_waiting(task):
                resumed.append(task.id)
        return resumed

    async def approval_changed(self, approval: ApprovalInfo) -> bool:
        """Resumes the task that waits for `approval` if it was decided; True if it resumed."""
        if approval.state == "pending" or not approval.task_id:
            return False
        try:
            task = await self._store.get_task(approval.task_id)
        except NotFound:
            return False  # not a task of this runtime
        return await self._resume(task, approval)

    async def _check_waiting(self, task: TaskRecord) -> bool:
        """Reads the approval a waiting task waits for, and resumes the task if it was decided."""
        peers = self._loop.peers
        if peers is None or self.is_running(task.id) or not task.pending_approval_id:
            return False
        try:
            approval = await peers.get_approval(task.pending_approval_id)
        except PeerError as exc:
            log.warning("cannot read approval %s: %s", task.pending_approval_id, exc, extra={"task_id": task.id})
            return False
        return await self._resume(task, approval)

    async def _resume(self, task: TaskRecord, approval: ApprovalInfo) -> bool:
        if (
            approval.state == "pending"
            or task.status is not TaskStatus.WAITING_APPROVAL
            or task.pending_approval_id != approval.id
            or self.is_running(task.id)
        ):
            return False
        # "used" means it was approved and then consumed: for this task it counts as approved.
        decision = "approved" if approval.state in ("approved", "used") else approval.state
        decided = {"approval_id": approval.id, "decision": decision, "reason": approval.reason,
                   "decided_by": approval.decided_by}
        # The decision and the switch to running in one transaction, and only if the task
        # still waits for this approval (a cancel, or the same decision read twice, may have come first).
        if await self._store.transition(
            task.id, TaskStatus.RUNNING, events=[("approval_decided", decided)], reason=f"approval {decision}",
            expect=(TaskStatus.WAITING_APPROVAL,),
        ) is None:
            return False
        self.start(task.id, "approval")
        return True

    async def shutdown(self) -> None:
        """Stops running loops without changing their tasks' status, so they resume on restart."""
        for watch in (self._watcher, self._resyncer):
            if watch is not None:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
        for pending in list(self._background):
            await asyncio.gather(pending, return_exceptions=True)
        jobs = list(self._running.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    async def _traced(self, task_id: str, cause: str) -> None:
        # The turn's span (GenAI conventions) in the task's one trace, whichever call started it
        # (that call's span is linked): each turn and each resume of a task is in that trace.
        with task_span("invoke_agent DuckLM", task_id, {
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "DuckLM", "gen_ai.conversation.id": task_id,
            "ducklm.turn.cause": cause,
        }):
            await self._run(task_id)

    async def _run(self, task_id: str) -> None:
        try:
            await self._store.hold_log(task_id)
            await self._loop.run_turn(task_id)
        except asyncio.CancelledError:
            raise
        except (Unavailable, Aborted) as exc:
            if exc.reason not in HANDED_OVER:
                await self._store.fail_task(task_id, exc.code.name.lower(), exc.message)
            else:
                # Not the task's failure: its database went away, or another replica took it
                # over. Nothing more can be recorded here; the lease keeper (leases.py) resumes
                # it from its log when the database answers, or the new owner already has.
                log.warning("turn stopped: %s", exc.message, extra={"task_id": task_id})
                return
        except DuckLMError as exc:
            await self._store.fail_task(task_id, exc.code.name.lower(), exc.message)
        except PeerError as exc:
            await self._store.fail_task(task_id, exc.code.lower(), f"{exc.service} service: {exc.message}")
        except Exception as exc:
            log.exception("task loop crashed", extra={"task_id": task_id})
            await self._store.fail_task(task_id, "internal", f"internal error: {exc!r}")
        finally:
            # Only this job's own entry: a new turn may have started as this one came to rest.
            if self._running.get(task_id) is asyncio.current_task():
                del self._running[task_id]
        task = await self._store.get_task(task_id)
        observe_task_outcome(task.status.value)
        if task.status is TaskStatus.WAITING_APPROVAL:
            # A decision streamed before this wait was recorded did not find the task waiting.
            self._in_background(self._settle_waiting(task_id))
        # Recorded in the background: the turn has come to rest and its caller need not wait.
        self._in_background(self._record_experience(task_id))

    async def _settle_waiting(self, task_id: str) -> None:
        await self._check_waiting(await self._store.get_task(task_id))

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
