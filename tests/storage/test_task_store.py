"""The runtime's task store, one suite run on both backends: SQLite (store.py) and a real
PostgreSQL server (pg_store.py). Every test runs once per backend (the `task_store` fixture)."""

from __future__ import annotations

import asyncio

import pytest

from services.common.errors import Aborted, FailedPrecondition, NotFound
from services.runtime.recovery import reconcile
from services.runtime.states import TaskStatus
from services.runtime.storage import TaskStorage


async def test_a_task_opens_running_with_its_message_and_a_gap_free_log(task_store: TaskStorage) -> None:
    task, user = await task_store.open_task({"text": "hello", "skill": "greet"})
    assert task.status is TaskStatus.RUNNING and task.title == "hello"
    assert user.type == "user_message" and user.data == {"text": "hello", "skill": "greet"}
    events = await task_store.list_events(task.id)
    assert [(e.seq, e.type) for e in events] == [(1, "task_created"), (2, "user_message"), (3, "status_changed")]
    assert events[2].data == {"from": "pending", "to": "running", "reason": "user_message"}
    assert (await task_store.get_task(task.id)).status is TaskStatus.RUNNING


async def test_of_many_concurrent_continuations_exactly_one_wins(task_store: TaskStorage) -> None:
    task, _ = await task_store.open_task({"text": "hello"})
    await task_store.complete_turn(task.id, "hi", final=False, reason="respond")
    outcomes = await asyncio.gather(
        *(task_store.continue_task(task.id, {"text": f"m{i}"}) for i in range(20)), return_exceptions=True
    )
    assert sum(1 for o in outcomes if isinstance(o, tuple)) == 1
    assert all(isinstance(o, Aborted) for o in outcomes if not isinstance(o, tuple))
    events = await task_store.list_events(task.id)
    assert sum(1 for e in events if e.type == "user_message") == 2
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    await task_store.set_status(task.id, TaskStatus.CANCELLED, reason="test")
    with pytest.raises(FailedPrecondition):
        await task_store.continue_task(task.id, {"text": "late"})


async def test_concurrent_appends_to_one_task_get_distinct_consecutive_seqs(task_store: TaskStorage) -> None:
    task, _ = await task_store.open_task({"text": "hello"})
    appended = await asyncio.gather(*(task_store.append_event(task.id, "memory_stored", {"i": i}) for i in range(30)))
    assert sorted(e.seq for e in appended) == list(range(4, 34))
    events = await task_store.list_events(task.id, after_seq=3)
    assert sorted(e.data["i"] for e in events) == list(range(30))


async def test_a_refused_transition_writes_nothing(task_store: TaskStorage) -> None:
    task, _ = await task_store.open_task({"text": "hello"})
    before = await task_store.list_events(task.id)
    with pytest.raises(FailedPrecondition):
        # running -> pending is refused after the event was written inside the transaction.
        await task_store.transition(task.id, TaskStatus.PENDING, events=[("error", {"code": "x", "message": "y"})])
    assert await task_store.transition(task.id, TaskStatus.COMPLETED, expect={TaskStatus.PENDING}) is None
    await task_store.append_event(task.id, "memory_stored", {"text": "later"})
    events = await task_store.list_events(task.id)
    assert [e.type for e in events[len(before):]] == ["memory_stored"]
    assert events[-1].seq == len(before) + 1
    assert (await task_store.get_task(task.id)).status is TaskStatus.RUNNING


async def test_a_turn_records_usage_approval_and_reply(task_store: TaskStorage) -> None:
    task, _ = await task_store.open_task({"text": "run it"})
    await task_store.record_model_call(task.id, {"text": "{}"}, prompt_tokens=10, completion_tokens=3,
                                       cached_prompt_tokens=4)
    # A step is a directive (or an output that was not one), not a model call.
    assert (await task_store.get_task(task.id)).steps == 0
    await task_store.record_step(task.id, "directive", {"action": "call_tool", "tool": "run"})
    waiting = await task_store.wait_for_approval(task.id, {"approval_id": "a1", "call_id": "c1"})
    assert waiting.status is TaskStatus.WAITING_APPROVAL and waiting.pending_approval_id == "a1"
    assert [t.id for t in await task_store.tasks_in(TaskStatus.WAITING_APPROVAL)] == [task.id]
    await task_store.set_status(task.id, TaskStatus.RUNNING, reason="approved")
    done = await task_store.complete_turn(task.id, "all done", final=True, reason="finish")
    assert (done.status, done.last_reply, done.steps) == (TaskStatus.COMPLETED, "all done", 1)
    assert (done.prompt_tokens, done.completion_tokens, done.cached_prompt_tokens) == (10, 3, 4)
    assert done.pending_approval_id == ""
    assert [e.type for e in await task_store.list_events(task.id)][-2:] == ["assistant_message", "status_changed"]


async def test_failing_records_the_error_once_and_keeps_a_final_status(task_store: TaskStorage) -> None:
    task, _ = await task_store.open_task({"text": "hello"})
    await task_store.fail_task(task.id, "MODEL_ERROR", "the model went away")
    failed = await task_store.get_task(task.id)
    assert failed.status is TaskStatus.FAILED and failed.error == "the model went away"
    await task_store.fail_task(task.id, "LATE", "after the end")
    events = await task_store.list_events(task.id)
    assert [e.data["code"] for e in events if e.type == "error"] == ["MODEL_ERROR", "LATE"]
    assert (await task_store.get_task(task.id)).status is TaskStatus.FAILED


async def test_listing_paging_renaming_and_deleting(task_store: TaskStorage) -> None:
    ids = [(await task_store.open_task({"text": f"task {i}"}))[0].id for i in range(5)]
    await task_store.complete_turn(ids[0], "done", final=True, reason="finish")
    newest_first = [t.id for t in await task_store.list_tasks(0, 10)]
    assert newest_first == ids[::-1]
    assert [t.id for t in await task_store.list_tasks(1, 2)] == ids[::-1][1:3]
    assert [t.id for t in await task_store.list_tasks(0, 10, TaskStatus.COMPLETED)] == [ids[0]]
    assert [t.id for t in await task_store.resumable_tasks()] == ids[1:]
    renamed = await task_store.rename_task(ids[1], "x" * 300)
    assert renamed.title == "x" * 200
    await task_store.delete_task(ids[0])
    with pytest.raises(NotFound):
        await task_store.get_task(ids[0])
    assert await task_store.list_events(ids[0]) == []
    with pytest.raises(NotFound):
        await task_store.delete_task(ids[0])


async def test_model_strings_with_lone_surrogates_are_stored_and_read_back(task_store: TaskStorage) -> None:
    task, _ = await task_store.open_task({"text": "bad \ud800 title"})
    event = await task_store.append_event(task.id, "directive", {"raw": "x\udfffy", "nested": ["\ud83d"], "nul": "a\x00b"})
    assert event.data == {"raw": "x\ufffdy", "nested": ["\ufffd"], "nul": "a\x00b"}
    done = await task_store.complete_turn(task.id, "reply \ud800", final=True, reason="finish")
    assert done.last_reply == "reply \ufffd" and "\ufffd" in done.title
    stored = await task_store.list_events(task.id)
    assert stored[3].data == event.data


async def test_the_log_read_back_is_the_log_written(task_store: TaskStorage) -> None:
    """Key order and values survive storage exactly (the prompt is rendered from them)."""
    task, _ = await task_store.open_task({"text": "hello"})
    data = {"z": 1, "a": [1.5, None, True], "m": {"y": "é", "b": ""}}
    written = await task_store.append_event(task.id, "tool_result", data)
    await task_store.hold_log("other-task-never-created")
    await task_store.hold_log(task.id)
    (read,) = await task_store.list_events(task.id, after_seq=written.seq - 1)
    assert list(read.data) == ["z", "a", "m"] and read.data == data
    assert read.create_time == written.create_time and read.seq == written.seq


async def test_subscribers_see_committed_and_live_events_only(task_store: TaskStorage) -> None:
    """A subscriber may be handed an event twice (PostgreSQL also announces this process's own
    commits); readers drop seqs they have. It never sees an event that was not committed."""
    task, _ = await task_store.open_task({"text": "hello"})
    queue = task_store.subscribe(task.id)
    task_store.publish_live(task.id, "model_token", {"text": "h"})
    with pytest.raises(FailedPrecondition):
        await task_store.transition(task.id, TaskStatus.PENDING, events=[("error", {"code": "x", "message": "y"})])
    stored = await task_store.append_event(task.id, "memory_stored", {"text": "t"})
    seen = []
    while not queue.empty():
        seen.append(queue.get_nowait())
    assert seen[0].seq == 0 and seen[0].type == "model_token"
    assert (stored.seq, "memory_stored") in [(e.seq, e.type) for e in seen]
    log = {e.seq: e.type for e in await task_store.list_events(task.id)}
    assert all(log[e.seq] == e.type for e in seen[1:]) and "error" not in log.values()
    task_store.unsubscribe(task.id, queue)
    await task_store.append_event(task.id, "memory_stored", {"text": "after"})
    while not queue.empty():  # only what was committed before unsubscribing (announced late)
        assert queue.get_nowait().seq <= stored.seq


async def test_reflections_are_recorded_and_listed(task_store: TaskStorage) -> None:
    first = await task_store.record_reflection(["e1", "e2"], "proposed", "p1", "out \ud800")
    second = await task_store.record_reflection(["e3"], "nothing", "", "")
    listed = await task_store.list_reflections()
    assert [r["id"] for r in listed] == [first, second]
    assert listed[0]["experience_ids"] == '["e1", "e2"]' and listed[0]["model_output"] == "out \ufffd"
    assert isinstance(listed[0]["create_time"], str)


async def test_resume_puts_a_task_with_an_open_approval_back_to_waiting(task_store: TaskStorage) -> None:
    """The state a crash between two writes could leave: approval_requested stored, still running."""
    task, _ = await task_store.open_task({"text": "run it"})
    await task_store.append_event(task.id, "tool_call", {"call_id": "c1", "tool": "run_command", "arguments": {}})
    await task_store.append_event(
        task.id, "approval_requested", {"approval_id": "a1", "call_id": "c1", "tool": "run_command", "arguments": {}}
    )
    assert await reconcile(task_store, await task_store.get_task(task.id)) is False
    fixed = await task_store.get_task(task.id)
    assert fixed.status is TaskStatus.WAITING_APPROVAL and fixed.pending_approval_id == "a1"
    other, _ = await task_store.open_task({"text": "mid-turn"})
    assert await reconcile(task_store, other) is True
    assert (await task_store.list_events(other.id))[-1].type == "task_resumed"
