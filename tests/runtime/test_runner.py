"""The task runner against fakes of its protocols (the loop's turns, the approvals peer) on a real
SQLite task store: a waiting task resumes from the approvals stream, and no decision is lost when
the stream was down, when it came before the wait was recorded, or when it arrives twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import pytest

from services.runtime.peers import ApprovalInfo, PeerError, Peers
from services.runtime.runner import TaskRunner
from services.runtime.states import TaskStatus
from services.runtime.store import TaskStore

WAIT = 10.0


class FakeApprovals:
    """The approvals side of the peers: approvals by id, and streams fed by `decide`."""

    def __init__(self) -> None:
        self.approvals: dict[str, ApprovalInfo] = {}
        self._streams: list[asyncio.Queue[ApprovalInfo | PeerError]] = []
        self.subscriptions: asyncio.Queue[int] = asyncio.Queue()
        self.withdrawn: list[str] = []
        self._opened = 0

    async def get_approval(self, approval_id: str) -> ApprovalInfo:
        return self.approvals[approval_id]

    async def watch_approvals(self) -> AsyncGenerator[ApprovalInfo, None]:
        queue: asyncio.Queue[ApprovalInfo | PeerError] = asyncio.Queue()
        self._streams.append(queue)
        self._opened += 1
        self.subscriptions.put_nowait(self._opened)
        return self._stream(queue)

    async def _stream(self, queue: asyncio.Queue[ApprovalInfo | PeerError]) -> AsyncGenerator[ApprovalInfo, None]:
        while True:
            item = await queue.get()
            if isinstance(item, PeerError):
                raise item
            yield item

    def decide(self, approval: ApprovalInfo, *, streamed: bool = True) -> None:
        """Records a decision; `streamed` false: no open stream hears of it (it was down)."""
        self.approvals[approval.id] = approval
        if streamed:
            for queue in self._streams:
                queue.put_nowait(approval)

    def drop_streams(self) -> None:
        for queue in self._streams:
            queue.put_nowait(PeerError("approvals", "UNAVAILABLE", "the tools service stopped"))
        self._streams.clear()

    async def deny_approval(self, approval_id: str, reason: str) -> None:
        self.withdrawn.append(approval_id)

    async def record_experience(self, experience: dict[str, Any]) -> str:
        return "experience"


class FakeTurns:
    """The loop: each turn is recorded; `next_turn` says what the next one does."""

    def __init__(self, store: TaskStore, approvals: FakeApprovals) -> None:
        self._store = store
        self._peers = approvals
        self.turns: asyncio.Queue[str] = asyncio.Queue()
        self.wait_on = ""
        self.before_wait: asyncio.Event | None = None
        self.started = asyncio.Event()

    @property
    def peers(self) -> Peers | None:
        return cast(Peers, self._peers)

    async def run_turn(self, task_id: str) -> None:
        self.started.set()
        if self.wait_on:
            approval_id, self.wait_on = self.wait_on, ""
            self._peers.approvals[approval_id] = ApprovalInfo(approval_id, "pending", "h", task_id=task_id)
            if self.before_wait is not None:
                await self.before_wait.wait()
            await self._store.wait_for_approval(task_id, {"approval_id": approval_id, "call_id": "c1"})
        else:
            await self._store.set_status(task_id, TaskStatus.COMPLETED, reason="done")
        self.turns.put_nowait(task_id)


class Slept:
    """An injected sleep: records each delay and returns at once, so reconnects need no clock."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def store() -> AsyncIterator[TaskStore]:
    opened = await TaskStore.open(":memory:")
    try:
        yield opened
    finally:
        await opened.close()


async def _waiting_task(store: TaskStore, approvals: FakeApprovals, approval_id: str) -> str:
    task, _ = await store.open_task({"text": "write it"})
    approvals.approvals[approval_id] = ApprovalInfo(approval_id, "pending", "h", task_id=task.id)
    await store.wait_for_approval(task.id, {"approval_id": approval_id, "call_id": "c1"})
    return task.id


async def _started(store: TaskStore) -> tuple[FakeApprovals, FakeTurns, TaskRunner, Slept]:
    approvals = FakeApprovals()
    turns = FakeTurns(store, approvals)
    slept = Slept()
    runner = TaskRunner(store, turns, approval_retry_seconds=0.25, sleep=slept)
    return approvals, turns, runner, slept


async def _decisions(store: TaskStore, task_id: str) -> list[dict[str, Any]]:
    return [e.data for e in await store.list_events(task_id, limit=1000) if e.type == "approval_decided"]


async def test_a_streamed_decision_resumes_the_waiting_task_once(store: TaskStore) -> None:
    approvals, turns, runner, _ = await _started(store)
    task_id = await _waiting_task(store, approvals, "a1")
    runner.watch_approvals()
    await asyncio.wait_for(runner.watching.wait(), WAIT)
    approved = ApprovalInfo("a1", "approved", "h", reason="fine", decided_by="human via test", task_id=task_id)
    approvals.decide(approved)
    approvals.decide(approved)  # the same decision twice (a resync and the stream) resumes once
    assert await asyncio.wait_for(turns.turns.get(), WAIT) == task_id
    await runner.shutdown()
    assert await _decisions(store, task_id) == [
        {"approval_id": "a1", "decision": "approved", "reason": "fine", "decided_by": "human via test"}
    ]
    assert turns.turns.empty()


async def test_pending_and_foreign_approvals_resume_nothing(store: TaskStore) -> None:
    approvals, turns, runner, _ = await _started(store)
    task_id = await _waiting_task(store, approvals, "a1")
    assert not await runner.approval_changed(ApprovalInfo("a1", "pending", "h", task_id=task_id))
    assert not await runner.approval_changed(ApprovalInfo("a9", "approved", "h", task_id=task_id))
    assert not await runner.approval_changed(ApprovalInfo("a1", "approved", "h", task_id="another-runtimes-task"))
    assert (await store.get_task(task_id)).status is TaskStatus.WAITING_APPROVAL
    denied = ApprovalInfo("a1", "denied", "h", reason="no", task_id=task_id)
    assert await runner.approval_changed(denied)
    assert await asyncio.wait_for(turns.turns.get(), WAIT) == task_id
    await runner.shutdown()
    assert [d["decision"] for d in await _decisions(store, task_id)] == ["denied"]


async def test_a_decision_made_while_the_stream_was_down_is_read_on_reconnect(store: TaskStore) -> None:
    approvals, turns, runner, slept = await _started(store)
    task_id = await _waiting_task(store, approvals, "a1")
    runner.watch_approvals()
    assert await asyncio.wait_for(approvals.subscriptions.get(), WAIT) == 1
    await asyncio.wait_for(runner.watching.wait(), WAIT)
    approvals.drop_streams()
    # Decided while no stream is open: only the resync after reconnecting can see it.
    approvals.decide(ApprovalInfo("a1", "approved", "h", task_id=task_id), streamed=False)
    assert await asyncio.wait_for(approvals.subscriptions.get(), WAIT) == 2
    assert await asyncio.wait_for(turns.turns.get(), WAIT) == task_id
    assert slept.delays == [0.25]
    await runner.shutdown()
    assert [d["decision"] for d in await _decisions(store, task_id)] == ["approved"]


async def test_a_decision_streamed_before_the_wait_was_recorded_is_not_lost(store: TaskStore) -> None:
    approvals, turns, runner, _ = await _started(store)
    runner.watch_approvals()
    await asyncio.wait_for(runner.watching.wait(), WAIT)
    turns.wait_on, turns.before_wait = "a1", asyncio.Event()
    task, _ = await store.open_task({"text": "write it"})
    runner.start(task.id)
    # The human decides while the turn is still running (its wait not yet recorded).
    await asyncio.wait_for(turns.started.wait(), WAIT)
    approvals.decide(ApprovalInfo("a1", "approved", "h", task_id=task.id))
    turns.before_wait.set()
    assert await asyncio.wait_for(turns.turns.get(), WAIT) == task.id  # the turn that waited
    assert await asyncio.wait_for(turns.turns.get(), WAIT) == task.id  # resumed by the read after it
    await runner.shutdown()
    assert [d["decision"] for d in await _decisions(store, task.id)] == ["approved"]
    assert (await store.get_task(task.id)).status is TaskStatus.COMPLETED


async def test_cancelling_a_waiting_task_withdraws_its_approval_and_a_late_decision_is_ignored(
    store: TaskStore,
) -> None:
    approvals, _turns, runner, _ = await _started(store)
    task_id = await _waiting_task(store, approvals, "a1")
    await runner.cancel(task_id, "changed my mind")
    assert approvals.withdrawn == ["a1"]
    assert not await runner.approval_changed(ApprovalInfo("a1", "approved", "h", task_id=task_id))
    assert (await store.get_task(task_id)).status is TaskStatus.CANCELLED
    await runner.shutdown()


async def test_a_decision_no_stream_carries_is_read_by_the_periodic_resync(store: TaskStore) -> None:
    """With several tools replicas, a decision taken on another one never reaches this stream."""
    approvals = FakeApprovals()
    turns = FakeTurns(store, approvals)
    runner = TaskRunner(store, turns, approval_retry_seconds=0.25, sleep=Slept(), resync_seconds=0.01)
    task_id = await _waiting_task(store, approvals, "a1")
    runner.watch_approvals()
    await asyncio.wait_for(runner.watching.wait(), WAIT)
    approvals.decide(ApprovalInfo("a1", "approved", "h", task_id=task_id), streamed=False)
    assert await asyncio.wait_for(turns.turns.get(), WAIT) == task_id
    await runner.shutdown()
    assert [d["decision"] for d in await _decisions(store, task_id)] == ["approved"]
