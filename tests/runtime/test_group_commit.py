"""The store's group commit (services/runtime/sqlite_batches.py): transactions that arrive
together share one commit, a failing one leaves nothing behind and fails only its caller, and
what was committed is what a fresh process reads back. Real SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from services.common.errors import FailedPrecondition
from services.runtime.sqlite_batches import SqliteBatches
from services.runtime.states import TaskStatus
from services.runtime.store import TaskStore


async def test_concurrent_transactions_share_commits_and_a_failing_one_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = 0
    original = SqliteBatches._commit

    def counted(connection: sqlite3.Connection) -> None:
        nonlocal commits
        commits += 1
        original(connection)

    monkeypatch.setattr(SqliteBatches, "_commit", staticmethod(counted))
    store = await TaskStore.open(tmp_path / "runtime.db")
    try:
        tasks = [(await store.open_task({"text": f"task {i}"}))[0] for i in range(20)]
        before = commits
        appended = [store.append_event(task.id, "memory_stored", {"text": f"n{n}"}) for task in tasks for n in range(3)]
        # running -> pending is refused, after its event was written inside its transaction.
        refused = store.transition(tasks[0].id, TaskStatus.PENDING, events=[("error", {"code": "x", "message": "y"})])
        outcomes = await asyncio.gather(*appended, refused, return_exceptions=True)
        assert isinstance(outcomes[-1], FailedPrecondition)
        assert not any(isinstance(o, BaseException) for o in outcomes[:-1])
        assert commits - before < len(appended)  # 60 transactions, fewer commits
    finally:
        await store.close()
    reopened = await TaskStore.open(tmp_path / "runtime.db")
    try:
        for task in tasks:
            events = await reopened.list_events(task.id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert [e.data["text"] for e in events if e.type == "memory_stored"] == ["n0", "n1", "n2"]
            assert not any(e.type == "error" for e in events)
            assert (await reopened.get_task(task.id)).status is TaskStatus.RUNNING
    finally:
        await reopened.close()


async def test_live_subscribers_and_the_log_cache_see_each_event_once_in_commit_order(tmp_path: Path) -> None:
    store = await TaskStore.open(tmp_path / "runtime.db")
    try:
        task, _ = await store.open_task({"text": "hello"})
        await store.hold_log(task.id)
        queue = store.subscribe(task.id)
        await asyncio.gather(*(store.append_event(task.id, "memory_stored", {"text": str(i)}) for i in range(10)))
        live = [queue.get_nowait() for _ in range(queue.qsize())]
        cached = await store.list_events(task.id)
        assert [e.seq for e in live] == [e.seq for e in cached[-10:]]
        assert [e.seq for e in cached] == list(range(1, len(cached) + 1))
    finally:
        await store.close()
