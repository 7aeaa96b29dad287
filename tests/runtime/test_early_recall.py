"""The turn's automatic recall is off the way to the first token: with the memory service slow
to answer, the first model call goes out without waiting for it, the memories reach the model
from the next step, and the recall is in the log before the first action is carried out. Real
tools and skills services, a memory service (in-process, real gRPC) that answers Recall only
when the test lets it, and a scripted chat model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ducklm.common.v1 import common_pb2
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.server import GrpcServer, ServiceBinding, build_server
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.server import create_server as create_runtime
from tests.runtime.conftest import Peers, write_models_file
from tests.scripted_model import ScriptedModel


class HeldMemory(memory_pb2_grpc.MemoryServiceServicer):
    """Answers Recall with one memory, once `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def Recall(self, request: memory_pb2.RecallRequest, context: object) -> memory_pb2.SearchResponse:
        await self.release.wait()
        memory = memory_pb2.Memory(id="m1", text="The codename is Bluebird.", scope=memory_pb2.MEMORY_SCOPE_LONG_TERM)
        return memory_pb2.SearchResponse(results=[memory_pb2.ScoredMemory(memory=memory, score=0.9)])


@pytest.fixture
async def held_memory() -> AsyncIterator[tuple[HeldMemory, GrpcServer]]:
    servicer = HeldMemory()  # type: ignore[abstract]  # only Recall is called
    server = await build_server(
        [ServiceBinding(servicer, memory_pb2_grpc.add_MemoryServiceServicer_to_server,
                        memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name)],
        "127.0.0.1:0",
    )
    try:
        yield servicer, server
    finally:
        servicer.release.set()
        await server.stop(grace=1.0)


@pytest.fixture
async def runtime(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers, held_memory: tuple[HeldMemory, GrpcServer]
) -> AsyncIterator[GrpcServer]:
    server = await create_runtime(RuntimeSettings(
        address="127.0.0.1:0", database=tmp_path / "runtime.db", decision="single",
        models_file=write_models_file(tmp_path / "models.yaml", scripted_model.endpoint),
        tools_address=peers.tools.address, skills_address=peers.skills.address, memory_address=held_memory[1].address,
    ))
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


async def _first_request(model: ScriptedModel) -> None:
    for _ in range(500):
        if model.requests:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the first model call waited for the recall")


async def test_a_slow_recall_does_not_hold_up_the_first_model_call(
    runtime: GrpcServer, scripted_model: ScriptedModel, held_memory: tuple[HeldMemory, GrpcServer]
) -> None:
    scripted_model.script([
        {"action": "call_tool", "tool": "list_dir", "arguments": {}},
        {"action": "finish", "message": "Bluebird."},
    ])
    async with grpc.aio.insecure_channel(runtime.address) as channel:
        stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
        chat = stub.Chat(runtime_pb2.ChatRequest(message="What is the codename?"))  # under way once made
        await _first_request(scripted_model)  # sent while Recall is still held
        assert not any("Bluebird" in m["content"] for m in scripted_model.requests[0]["messages"])
        held_memory[0].release.set()
        reply = await chat
        events = (await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=reply.task.id))).events
    assert reply.task.status == common_pb2.TASK_STATUS_COMPLETED and reply.reply == "Bluebird."
    # Used from the next step on.
    second = scripted_model.requests[1]["messages"]
    assert any("Relevant memories" in m["content"] and "Bluebird" in m["content"] for m in second)
    # Recorded after the first model call and before the first action.
    kinds = [common_pb2.EventType.Name(e.type) for e in events]
    recalled = kinds.index("EVENT_TYPE_MEMORY_RECALLED")
    assert kinds.index("EVENT_TYPE_MODEL_CALL") < recalled < kinds.index("EVENT_TYPE_TOOL_CALL")
    assert kinds.count("EVENT_TYPE_MEMORY_RECALLED") == 1
