"""The runtime service over real gRPC, with a scripted model server deciding each directive."""

from __future__ import annotations

import json
from pathlib import Path

import aiosqlite
import grpc
import pytest
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.server import GrpcServer
from services.runtime.config import Settings
from services.runtime.server import create_server
from services.runtime.states import TaskStatus
from services.runtime.store import TaskStore
from tests.runtime.conftest import write_models_file
from tests.scripted_model import ScriptedModel

COMPLETED = common_pb2.TASK_STATUS_COMPLETED
FAILED = common_pb2.TASK_STATUS_FAILED


async def event_types(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, task_id: str) -> list[str]:
    reply = await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task_id))
    return [common_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_").lower() for event in reply.events]


async def test_respond_completes_the_task_with_the_model_message(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script([{"action": "respond", "message": "Hi there"}])
    reply = await runtime_stub.Chat(runtime_pb2.ChatRequest(message="hello"))
    assert reply.reply == "Hi there"
    assert reply.task.status == COMPLETED
    assert reply.task.steps == 1
    assert await event_types(runtime_stub, reply.task.id) == [
        "task_created", "user_message", "status_changed", "model_call", "directive", "assistant_message", "status_changed",
    ]
    # The request constrained the output with the step's JSON schema and kept the prompt cache on.
    request = scripted_model.requests[-1]
    assert request["response_format"]["type"] == "json_schema"
    offered = [branch["properties"]["action"]["const"] for branch in request["response_format"]["json_schema"]["schema"]["oneOf"]]
    assert offered == ["respond", "finish"]
    assert request["cache_prompt"] is True and request["stream"] is True


async def test_invalid_output_is_repaired_with_the_error_fed_back(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script(['{"action": "respond", "mess', {"action": "finish", "message": "Done"}])
    reply = await runtime_stub.Chat(runtime_pb2.ChatRequest(message="do it"))
    assert reply.task.status == COMPLETED and reply.reply == "Done"
    types = await event_types(runtime_stub, reply.task.id)
    assert types.count("error") == 1 and types.count("model_call") == 2
    second_prompt = scripted_model.requests[-1]["messages"]
    assert "not a valid action" in second_prompt[-1]["content"]
    # The first step's prompt is a byte-identical prefix of the second's (the cache can serve it).
    first_prompt = scripted_model.requests[-2]["messages"]
    assert second_prompt[: len(first_prompt)] == first_prompt


async def test_repeated_invalid_output_fails_the_task_cleanly(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script(["nope", "still nope", "{}", "never read"])
    reply = await runtime_stub.Chat(runtime_pb2.ChatRequest(message="x"))
    assert reply.task.status == FAILED
    assert "invalid directives" in reply.task.error
    assert reply.reply == ""
    assert (await event_types(runtime_stub, reply.task.id)).count("error") == 4  # 3 invalid + the failure
    assert len(scripted_model.outputs) == 1


async def test_a_task_continues_and_refuses_unknown_or_bad_input(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script([{"action": "respond", "message": "one"}, {"action": "respond", "message": "two"}])
    first = await runtime_stub.Chat(runtime_pb2.ChatRequest(message="a"))
    second = await runtime_stub.Chat(runtime_pb2.ChatRequest(message="b", task_id=first.task.id))
    assert second.task.id == first.task.id and second.reply == "two"
    assert second.task.steps == 2
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await runtime_stub.Chat(runtime_pb2.ChatRequest(message="c", task_id="nope"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await runtime_stub.Chat(runtime_pb2.ChatRequest(message="   "))
    assert empty.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_cancelled_tasks_take_no_more_messages(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script([{"action": "respond", "message": "ok"}])
    task = (await runtime_stub.Chat(runtime_pb2.ChatRequest(message="a"))).task
    cancelled = await runtime_stub.CancelTask(runtime_pb2.CancelTaskRequest(task_id=task.id, reason="test"))
    assert cancelled.status == common_pb2.TASK_STATUS_CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await runtime_stub.Chat(runtime_pb2.ChatRequest(message="b", task_id=task.id))
    assert again.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await runtime_stub.CancelTask(runtime_pb2.CancelTaskRequest(task_id=task.id))
    assert twice.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_stream_replays_then_ends_at_rest_and_lists_page(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script([{"action": "respond", "message": "streamed"}])
    task = (await runtime_stub.Chat(runtime_pb2.ChatRequest(message="a"))).task
    streamed = [event async for event in runtime_stub.StreamTaskEvents(runtime_pb2.StreamTaskEventsRequest(task_id=task.id))]
    assert [event.seq for event in streamed] == list(range(1, len(streamed) + 1))
    later = [e async for e in runtime_stub.StreamTaskEvents(runtime_pb2.StreamTaskEventsRequest(task_id=task.id, after_seq=3))]
    assert [event.seq for event in later] == [event.seq for event in streamed[3:]]
    page = await runtime_stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task.id, page_size=2))
    rest = await runtime_stub.ListTaskEvents(
        runtime_pb2.ListTaskEventsRequest(task_id=task.id, page_size=100, page_token=page.next_page_token)
    )
    assert [e.seq for e in page.events] + [e.seq for e in rest.events] == [e.seq for e in streamed]
    listed = await runtime_stub.ListTasks(runtime_pb2.ListTasksRequest(status=common_pb2.TASK_STATUS_COMPLETED))
    assert task.id in {t.id for t in listed.tasks}
    with pytest.raises(grpc.aio.AioRpcError) as bad_token:
        await runtime_stub.ListTasks(runtime_pb2.ListTasksRequest(page_token="garbage!"))
    assert bad_token.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_live_stream_carries_model_tokens(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script([{"action": "respond", "message": "first"}, {"action": "respond", "message": "a longer streamed reply"}])
    task = (await runtime_stub.Chat(runtime_pb2.ChatRequest(message="a"))).task
    stream = runtime_stub.StreamTaskEvents(runtime_pb2.StreamTaskEventsRequest(task_id=task.id, follow=True))
    chat = runtime_stub.Chat(runtime_pb2.ChatRequest(message="b", task_id=task.id))
    tokens: list[str] = []
    async for event in stream:
        if event.type == common_pb2.EVENT_TYPE_MODEL_TOKEN:
            assert event.seq == 0
            tokens.append(str(event.data["text"]))
        if event.type == common_pb2.EVENT_TYPE_ASSISTANT_MESSAGE and event.data["text"] == "a longer streamed reply":
            break
    stream.cancel()
    await chat
    assert json.loads("".join(tokens)) == {"action": "respond", "message": "a longer streamed reply"}


async def test_embed_returns_vectors_and_says_when_disabled(
    runtime_server: GrpcServer, tmp_path: Path, scripted_model: ScriptedModel
) -> None:
    async with grpc.aio.insecure_channel(runtime_server.address) as channel:
        embed = runtime_pb2_grpc.EmbeddingServiceStub(channel)
        reply = await embed.Embed(runtime_pb2.EmbedRequest(texts=["ab", "abcd"]))
        assert reply.dimension == 3 and [e.values[0] for e in reply.embeddings] == [2.0, 4.0]

    settings = Settings(
        address="127.0.0.1:0",
        database=tmp_path / "other.db",
        models_file=write_models_file(tmp_path / "no-embed.yaml", scripted_model.endpoint, embedding=False),
        standalone=True,
    )
    server = await create_server(settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            call = runtime_pb2_grpc.EmbeddingServiceStub(channel).Embed(runtime_pb2.EmbedRequest(texts=["x"]))
            with pytest.raises(grpc.aio.AioRpcError) as disabled:
                await call
            assert disabled.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "embeddings are disabled" in (disabled.value.details() or "")
            assert ("ducklm-error-reason", "EMBEDDINGS_DISABLED") in tuple(await call.initial_metadata())
    finally:
        await server.stop(grace=1.0)


async def test_a_task_interrupted_by_a_crash_resumes_on_restart(
    runtime_settings: Settings, scripted_model: ScriptedModel
) -> None:
    # Leave a task as a killed runtime would: user message committed, status running, no answer.
    store = await TaskStore.open(runtime_settings.database)
    task = await store.create_task("interrupted")
    await store.append_event(task.id, "task_created", {"message": "interrupted"})
    await store.append_event(task.id, "user_message", {"text": "interrupted"})
    await store.set_status(task.id, TaskStatus.RUNNING)
    await store.close()

    scripted_model.script([{"action": "respond", "message": "picked up"}])
    server = await create_server(runtime_settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            events = [e async for e in stub.StreamTaskEvents(runtime_pb2.StreamTaskEventsRequest(task_id=task.id))]
            resumed = await stub.GetTask(runtime_pb2.GetTaskRequest(task_id=task.id))
    finally:
        await server.stop(grace=1.0)
    assert resumed.status == COMPLETED and resumed.last_reply == "picked up"
    types = [common_pb2.EventType.Name(e.type) for e in events]
    assert "EVENT_TYPE_TASK_RESUMED" in types
    assert types.count("EVENT_TYPE_USER_MESSAGE") == 1


async def test_stream_chat_streams_the_reply_as_it_is_written(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script([{"action": "respond", "message": "first"}, {"action": "finish", "message": "Streamed \"reply\" ✓"}])
    task = (await runtime_stub.Chat(runtime_pb2.ChatRequest(message="a"))).task
    events = [e async for e in runtime_stub.StreamChat(runtime_pb2.ChatRequest(message="b", task_id=task.id))]
    assert {event.task_id for event in events} == {task.id}
    assert events[0].type == common_pb2.EVENT_TYPE_USER_MESSAGE and events[0].data["text"] == "b"
    reply = "".join(str(e.data["reply"]) for e in events if e.type == common_pb2.EVENT_TYPE_MODEL_TOKEN)
    assert reply == 'Streamed "reply" ✓'
    assert events[-1].type == common_pb2.EVENT_TYPE_STATUS_CHANGED and events[-1].data["to"] == "completed"
    stored = [e.seq for e in events if e.seq]
    assert stored == list(range(stored[0], stored[0] + len(stored)))


async def test_replay_reproduces_the_actions_without_a_model_server(
    runtime_settings: Settings, scripted_model: ScriptedModel
) -> None:
    scripted_model.script(["garbage", {"action": "respond", "message": "one"}, {"action": "finish", "message": "two"}])
    server = await create_server(runtime_settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            task = (await stub.Chat(runtime_pb2.ChatRequest(message="a"))).task
            await stub.Chat(runtime_pb2.ChatRequest(message="b", task_id=task.id))
            await scripted_model.stop()  # no model server from here on
            replay = await stub.ReplayTask(runtime_pb2.ReplayTaskRequest(task_id=task.id))
            assert replay.matches, replay.mismatch
            assert [json.loads(d).get("action", "invalid") for d in replay.directives] == ["invalid", "respond", "finish"]

            # A log whose recorded action differs from what its model output produces is caught.
            async with aiosqlite.connect(runtime_settings.database) as db:
                await db.execute(
                    "UPDATE events SET data = json_set(data, '$.message', 'tampered') WHERE task_id = ? AND type = 'directive'"
                    " AND json_extract(data, '$.action') = 'finish'",
                    (task.id,),
                )
                await db.commit()
    finally:
        await server.stop(grace=1.0)
    server = await create_server(runtime_settings)  # a fresh runtime reads the altered log
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            tampered = await stub.ReplayTask(runtime_pb2.ReplayTaskRequest(task_id=task.id))
            assert not tampered.matches and "action 3 differs" in tampered.mismatch
    finally:
        await server.stop(grace=1.0)
        await scripted_model.start()  # the fixture stops it again
