"""Starting and continuing a task is one compare-and-set; events and the status they cause are
committed together; resume brings every status in line with its log. Real SQLite, real gRPC."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.errors import Aborted, FailedPrecondition
from services.runtime.recovery import reconcile
from services.runtime.states import TaskStatus
from services.runtime.store import TaskStore
from tests.scripted_model import ScriptedModel


async def test_of_two_concurrent_continuations_exactly_one_wins(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.fallback = '{"action": "respond", "message": "answered"}'
    first = await runtime_stub.Chat(runtime_pb2.ChatRequest(message="start"))
    task_id = first.task.id
    for trial in range(10):
        messages = [f"trial {trial} from A", f"trial {trial} from B"]
        outcomes = await asyncio.gather(
            *(runtime_stub.Chat(runtime_pb2.ChatRequest(message=m, task_id=task_id)) for m in messages),
            return_exceptions=True,
        )
        won = [o for o in outcomes if isinstance(o, runtime_pb2.ChatResponse)]
        lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert lost[0].code() is grpc.StatusCode.ABORTED
        assert "the task is busy" in (lost[0].details() or "")
        assert won[0].task.status == common_pb2.TASK_STATUS_COMPLETED
        events = (await runtime_stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task_id))).events
        recorded = [e.data["text"] for e in events if e.type == common_pb2.EVENT_TYPE_USER_MESSAGE]
        loser = messages[1 - outcomes.index(won[0])]
        assert loser not in recorded and messages[outcomes.index(won[0])] in recorded
    task = await runtime_stub.GetTask(runtime_pb2.GetTaskRequest(task_id=task_id))
    assert task.steps == 11  # one model call per winning turn, none for the refused ones


async def test_many_concurrent_continuations_in_the_store(tmp_path: Path) -> None:
    store = await TaskStore.open(tmp_path / "runtime.db")
    try:
        task, _ = await store.open_task({"text": "hello"})
        await store.complete_turn(task.id, "hi", final=False, reason="respond")
        outcomes = await asyncio.gather(
            *(store.continue_task(task.id, {"text": f"m{i}"}) for i in range(20)), return_exceptions=True
        )
        assert sum(1 for o in outcomes if isinstance(o, tuple)) == 1
        assert all(isinstance(o, Aborted) for o in outcomes if not isinstance(o, tuple))
        events = await store.list_events(task.id)
        assert sum(1 for e in events if e.type == "user_message") == 2
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        await store.set_status(task.id, TaskStatus.CANCELLED, reason="test")
        with pytest.raises(FailedPrecondition):
            await store.continue_task(task.id, {"text": "late"})
    finally:
        await store.close()


async def test_a_failed_write_leaves_nothing_half_committed(tmp_path: Path) -> None:
    store = await TaskStore.open(tmp_path / "runtime.db")
    try:
        task, _ = await store.open_task({"text": "hello"})
        before = len(await store.list_events(task.id))
        with pytest.raises(FailedPrecondition):
            # running -> pending is refused after the event was written inside the transaction.
            await store.transition(task.id, TaskStatus.PENDING, events=[("error", {"code": "x", "message": "y"})])
        await store.append_event(task.id, "memory_stored", {"text": "later"})
    finally:
        await store.close()
    reopened = await TaskStore.open(tmp_path / "runtime.db")
    try:
        events = await reopened.list_events(task.id)
        assert [e.type for e in events[before:]] == ["memory_stored"]
        assert (await reopened.get_task(task.id)).status is TaskStatus.RUNNING
    finally:
        await reopened.close()


async def test_model_strings_with_lone_surrogates_are_stored_and_read_back(tmp_path: Path) -> None:
    store = await TaskStore.open(tmp_path / "runtime.db")
    try:
        task, _ = await store.open_task({"text": "bad \ud800 title"})
        event = await store.append_event(task.id, "directive", {"raw": "x\udfffy", "nested": ["\ud83d"]})
        assert event.data == {"raw": "x\ufffdy", "nested": ["\ufffd"]}
        done = await store.complete_turn(task.id, "reply \ud800", final=True, reason="finish")
        assert done.last_reply == "reply \ufffd" and "\ufffd" in done.title
    finally:
        await store.close()


async def test_resume_puts_a_task_with_an_open_approval_back_to_waiting(tmp_path: Path) -> None:
    """The state an older runtime could leave: approval_requested stored, status still running."""
    store = await TaskStore.open(tmp_path / "runtime.db")
    try:
        task, _ = await store.open_task({"text": "run it"})
        await store.append_event(task.id, "tool_call", {"call_id": "c1", "tool": "run_command", "arguments": {}})
        await store.append_event(
            task.id, "approval_requested", {"approval_id": "a1", "call_id": "c1", "tool": "run_command", "arguments": {}}
        )
        assert await reconcile(store, await store.get_task(task.id)) is False
        fixed = await store.get_task(task.id)
        assert fixed.status is TaskStatus.WAITING_APPROVAL and fixed.pending_approval_id == "a1"
        # Idempotent: a second restart changes nothing.
        count = len(await store.list_events(task.id))
        assert await reconcile(store, fixed) is False
        assert len(await store.list_events(task.id)) == count
        # Decided, but the switch to running was lost: the task runs again.
        await store.append_event(task.id, "approval_decided", {"approval_id": "a1", "decision": "approved"})
        assert await reconcile(store, await store.get_task(task.id)) is True
        assert (await store.get_task(task.id)).status is TaskStatus.RUNNING
    finally:
        await store.close()


async def test_list_tasks_refuses_an_unknown_status(runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runtime_stub.ListTasks(runtime_pb2.ListTasksRequest(status=99))  # type: ignore[arg-type]
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
