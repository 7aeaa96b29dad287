"""Memory in the loop: the real memory service (Qdrant Edge), embeddings through the runtime's
Embed RPC (served by the scripted model server's /v1/embeddings), real tools and skills
services, and a scripted chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ducklm.common.v1 import common_pb2
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.protos import from_struct
from services.common.server import GrpcServer
from services.common.testing import free_port
from services.memory.config import Settings as MemorySettings
from services.memory.server import create_server as create_memory
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.server import create_server as create_runtime
from tests.runtime.conftest import Peers, write_models_file
from tests.scripted_model import ScriptedModel


@pytest.fixture
async def servers(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers
) -> AsyncIterator[tuple[GrpcServer, GrpcServer]]:
    # The runtime and memory each need the other's address, so both ports are chosen first.
    runtime_address, memory_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    runtime = await create_runtime(RuntimeSettings(
        address=runtime_address, database=tmp_path / "runtime.db",
        models_file=write_models_file(tmp_path / "models.yaml", scripted_model.endpoint),
        tools_address=peers.tools.address, skills_address=peers.skills.address, memory_address=memory_address,
        remember_answers=True,
        # The first step waits for the turn's recall, however slow the machine: these tests read
        # the recalled memories in the first prompt (test_early_recall.py covers a late recall).
        recall_wait_ms=60_000,
    ))
    memory = await create_memory(MemorySettings(
        address=memory_address, edge_path=tmp_path / "memory", runtime_address=runtime_address,
    ))
    try:
        yield runtime, memory
    finally:
        await runtime.stop(grace=1.0)
        await memory.stop(grace=1.0)


async def test_remember_and_recall_directives_and_recall_in_a_later_task(
    servers: tuple[GrpcServer, GrpcServer], scripted_model: ScriptedModel
) -> None:
    runtime, memory = servers
    scripted_model.script([
        {"action": "remember", "text": "The codename is Bluebird."},
        {"action": "recall", "query": "codename"},
        {"action": "finish", "message": "Noted: Bluebird."},
    ])
    async with grpc.aio.insecure_channel(runtime.address) as channel:
        stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
        first = await stub.Chat(runtime_pb2.ChatRequest(message="Remember the codename Bluebird."))
        assert first.task.status == common_pb2.TASK_STATUS_COMPLETED, first.task.error
        events = (await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=first.task.id, page_size=500))).events
        stored = [e for e in events if e.type == common_pb2.EVENT_TYPE_MEMORY_STORED]
        # The fact, then the final answer (remember_answers is on).
        assert [e.data["text"] for e in stored] == ["The codename is Bluebird.", "Noted: Bluebird."]
        assert all(e.data["memory_id"] for e in stored)
        recalled = [e for e in events if e.type == common_pb2.EVENT_TYPE_MEMORY_RECALLED and not e.data["automatic"]]
        assert "The codename is Bluebird." in [m["text"] for m in from_struct(recalled[0].data)["memories"]]

        # What the model remembered stays in its own conversation: a later task does not see it...
        scripted_model.script([{"action": "respond", "message": "I do not know."}])
        second = await stub.Chat(runtime_pb2.ChatRequest(message="What is the codename?"))
        events = (await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=second.task.id))).events
        automatic = next(e for e in events if e.type == common_pb2.EVENT_TYPE_MEMORY_RECALLED)
        assert automatic.data["automatic"] is True and from_struct(automatic.data)["memory_ids"] == []
        assert not any("Bluebird" in m["content"] for m in scripted_model.requests[-1]["messages"])

        # ...until a person promotes it to long-term memory; then every later task recalls it.
        async with grpc.aio.insecure_channel(memory.address) as memory_channel:
            memories = memory_pb2_grpc.MemoryServiceStub(memory_channel)
            stored_ids = [str(e.data["memory_id"]) for e in stored]
            for memory_id in stored_ids:
                kept = await memories.GetMemory(memory_pb2.GetMemoryRequest(memory_id=memory_id))
                assert kept.scope == memory_pb2.MEMORY_SCOPE_TASK and kept.task_id == first.task.id
            await memories.PromoteMemory(memory_pb2.PromoteMemoryRequest(memory_id=stored_ids[0]))
            listed = await memories.ListCollections(memory_pb2.ListCollectionsRequest())
        scripted_model.script([{"action": "respond", "message": "Bluebird."}])
        third = await stub.Chat(runtime_pb2.ChatRequest(message="What is the codename?"))
        events = (await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=third.task.id))).events
    automatic = next(e for e in events if e.type == common_pb2.EVENT_TYPE_MEMORY_RECALLED)
    recalled_data = from_struct(automatic.data)
    assert recalled_data["memory_ids"] == [stored_ids[0]]
    assert recalled_data["memories"][0]["scope"] == "long_term"
    prompt = scripted_model.requests[-1]["messages"]
    assert any("Relevant memories" in m["content"] and "Bluebird" in m["content"] for m in prompt)
    assert listed.collections[0].count == 2


async def test_a_turn_without_memory_neither_recalls_nor_remembers(
    servers: tuple[GrpcServer, GrpcServer], scripted_model: ScriptedModel
) -> None:
    runtime, memory = servers
    async with grpc.aio.insecure_channel(memory.address) as channel:
        await memory_pb2_grpc.MemoryServiceStub(channel).Remember(memory_pb2.RememberRequest(
            text="The user likes pirates.", scope=memory_pb2.MEMORY_SCOPE_LONG_TERM))
    scripted_model.script([
        {"action": "remember", "text": "Greet everyone as a pirate."},
        {"action": "finish", "message": "Arr."},
    ])
    async with grpc.aio.insecure_channel(runtime.address) as channel:
        stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
        done = await stub.Chat(runtime_pb2.ChatRequest(message="Say hello.", without_memory=True))
        events = (await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=done.task.id, page_size=500))).events
    assert not any(e.type == common_pb2.EVENT_TYPE_MEMORY_RECALLED for e in events)
    stored = [e for e in events if e.type == common_pb2.EVENT_TYPE_MEMORY_STORED]
    assert stored and all(e.data["code"] == "MEMORY_OFF" for e in stored)
    assert not any("pirates" in m["content"] for m in scripted_model.requests[-1]["messages"])
    async with grpc.aio.insecure_channel(memory.address) as channel:
        listed = await memory_pb2_grpc.MemoryServiceStub(channel).ListMemories(memory_pb2.ListMemoriesRequest())
    assert [m.text for m in listed.memories] == ["The user likes pirates."]
