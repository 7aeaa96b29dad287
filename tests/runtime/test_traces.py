"""One task, one trace: every span recorded for a task, in every service, carries the task's trace
id (derived from the task id, services/common/task_trace.py), across turns, an approval's resume
and a restart. The gateway app, the runtime, the tools service and a memory service (with a fake
embedder) run in this process on real gRPC; the trace context crosses HTTP-to-gRPC and gRPC
metadata for real, and an in-memory exporter collects the spans."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common.server import GrpcServer
from services.common.task_trace import task_trace_id
from services.gateway.app import create_app
from services.gateway.config import Settings as GatewaySettings
from services.memory.config import Settings as MemorySettings
from services.memory.server import create_server as create_memory
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.server import create_server as create_runtime
from tests.memory.fakes import HashingEmbeddingService, start_runtime
from tests.runtime.conftest import Peers, write_models_file
from tests.scripted_model import ScriptedModel
from tests.tools.support import APPROVER_TOKEN
from tests.waits import until

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(autouse=True)
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on before any server of the test is built (the SDK provider is set once per
    process; later tests only add spans nobody reads)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[GrpcServer]:
    """A real memory service, embedding with a fake runtime's EmbeddingService."""
    embedder = await start_runtime(HashingEmbeddingService(64, "fake-hash-64"))
    server = await create_memory(MemorySettings(
        address="127.0.0.1:0", backend="edge", edge_path=tmp_path / "memory", runtime_address=embedder.address,
        embed_timeout_s=5.0,
    ))
    try:
        yield server
    finally:
        await server.stop(grace=1.0)
        await embedder.server.stop(0)


def _runtime_settings(tmp_path: Path, model: ScriptedModel, peers: Peers, memory: GrpcServer) -> RuntimeSettings:
    return RuntimeSettings(
        address="127.0.0.1:0", database=tmp_path / "runtime.db", decision="single",
        models_file=write_models_file(tmp_path / "models.yaml", model.endpoint),
        tools_address=peers.tools.address, skills_address=peers.skills.address, memory_address=memory.address,
        approval_retry_seconds=0.05,
    )


@pytest.fixture
async def runtime(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers, memory: GrpcServer
) -> AsyncIterator[GrpcServer]:
    server = await create_runtime(_runtime_settings(tmp_path, scripted_model, peers, memory))
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


@pytest.fixture
async def gateway(runtime: GrpcServer, peers: Peers, memory: GrpcServer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewaySettings(
        runtime_address=runtime.address, tools_address=peers.tools.address, skills_address=peers.skills.address,
        memory_address=memory.address, approver_token=APPROVER_TOKEN,
    ))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                               headers={"Content-Type": "application/json"}, timeout=30)
    async with app.router.lifespan_context(app), client:
        yield client


def _named(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert found, f"no span {name!r} among {sorted({s.name for s in spans})}"
    return found[0]


def _in_task(spans: tuple[ReadableSpan, ...], task_id: str) -> list[ReadableSpan]:
    return [s for s in spans if s.context.trace_id == task_trace_id(task_id)]


def _ancestors(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> list[str]:
    """The names of the span's recorded ancestors, nearest first."""
    by_id = {s.context.span_id: s for s in spans}
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        names.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    return names


async def test_a_turn_and_its_model_and_tool_calls_are_in_the_tasks_trace(
    spans: InMemorySpanExporter, gateway: httpx.AsyncClient, scripted_model: ScriptedModel, peers: Peers
) -> None:
    (peers.workspace / "notes.txt").write_text("hello")
    scripted_model.script([
        {"action": "call_tool", "tool": "list_dir", "arguments": {}},
        {"action": "finish", "message": "There is notes.txt."},
    ])
    reply = (await gateway.post("/v1/chat", json={"message": "What is in my workspace?"})).json()
    task_id = reply["task_id"]
    finished = spans.get_finished_spans()

    request = _named(finished, "POST /v1/chat")
    chat = _named(finished, "ducklm.runtime.v1.RuntimeService/Chat")
    turn = _named(finished, "invoke_agent DuckLM")
    tool = _named(finished, "execute_tool list_dir")
    executed = _named(finished, "ducklm.tools.v1.ToolsService/ExecuteTool")
    models = [s for s in finished if s.name == "chat scripted"]

    # The trace id is the task id; the request that opened the task (before the id existed)
    # is its own trace, and the turn links to it.
    assert task_trace_id(task_id) == int(task_id, 16)
    for part in (turn, tool, executed, *models):
        assert part.context.trace_id == int(task_id, 16), part.name
    assert len(models) == 2
    assert chat.context.trace_id == request.context.trace_id != int(task_id, 16)
    assert [link.context.span_id for link in turn.links] == [chat.context.span_id]
    # Each service continued its caller's span, handed over the wire (gRPC metadata).
    assert request.kind is SpanKind.SERVER and request.attributes is not None
    assert request.attributes["http.response.status_code"] == 200
    assert chat.kind is SpanKind.SERVER and chat.parent is not None and chat.parent.is_remote
    assert chat.parent.span_id == request.context.span_id
    assert executed.kind is SpanKind.SERVER and executed.parent is not None and executed.parent.is_remote
    assert executed.parent.span_id == tool.context.span_id
    # GenAI conventions on the turn, the tool and the model calls.
    assert turn.attributes is not None and turn.attributes["gen_ai.conversation.id"] == task_id
    assert turn.attributes["ducklm.turn.cause"] == "message"
    assert tool.attributes is not None and tool.attributes["gen_ai.tool.name"] == "list_dir"
    for model in models:
        assert model.attributes is not None and model.parent is not None
        assert model.attributes["gen_ai.operation.name"] == "chat"
        assert model.attributes["gen_ai.request.model"] == "scripted"
        assert int(str(model.attributes["gen_ai.usage.input_tokens"])) > 0
        assert model.parent.span_id == turn.context.span_id


async def test_two_turns_and_an_approved_tool_call_are_one_trace(
    spans: InMemorySpanExporter, gateway: httpx.AsyncClient, scripted_model: ScriptedModel, peers: Peers
) -> None:
    scripted_model.script([
        {"action": "call_tool", "tool": "write_file", "arguments": {"path": "out.txt", "content": "written by duck"}},
        {"action": "finish", "message": "Saved."},
        {"action": "call_tool", "tool": "list_dir", "arguments": {}},
        {"action": "finish", "message": "There is out.txt."},
    ])
    first = (await gateway.post("/v1/chat", json={"message": "Save a note"})).json()
    task_id = first["task_id"]
    assert first["status"] == "waiting_approval"
    approval_id = first["task"]["pending_approval_id"]
    approved = await gateway.post(f"/v1/approvals/{approval_id}/approve", json={})
    assert approved.status_code == 200, approved.text

    async def resumed() -> bool:
        turns = [s for s in spans.get_finished_spans() if s.name == "invoke_agent DuckLM"]
        return len(turns) == 2
    await until(resumed, "the turn resumed after the approval to end")
    assert (peers.workspace / "out.txt").read_text() == "written by duck"
    second = (await gateway.post("/v1/chat", json={"message": "What is there now?", "task_id": task_id})).json()
    assert second["reply"] == "There is out.txt."
    await until(lambda: _turns_ended(spans, 3), "the second message's turn to end")

    assert (await gateway.get(f"/v1/tasks/{task_id}")).json()["status"] == "completed"

    finished = spans.get_finished_spans()
    task_spans = _in_task(finished, task_id)
    names = [s.name for s in task_spans]
    turns = [s for s in task_spans if s.name == "invoke_agent DuckLM"]
    causes = [_cause(s) for s in turns]
    assert sorted(causes) == ["approval", "message", "message"]
    # Runtime, tools and model calls of all three turns, and the second message's own request
    # through the gateway and the runtime, are in the task's trace.
    assert names.count("chat scripted") == 4
    # write_file twice: the call that asked for the approval, and the one run once approved.
    assert names.count("execute_tool write_file") == 2 and names.count("execute_tool list_dir") == 1
    assert names.count("ducklm.tools.v1.ToolsService/ExecuteTool") == 3
    assert "POST /v1/chat" in names and "ducklm.runtime.v1.RuntimeService/Chat" in names
    assert f"GET /v1/tasks/{task_id}" in names and "ducklm.runtime.v1.RuntimeService/GetTask" in names
    # The wait for the person's decision, from the request to the decision, linked to the
    # gateway request that decided it.
    waited = _named(tuple(task_spans), "await_approval write_file")
    decision = _named(finished, f"POST /v1/approvals/{approval_id}/approve")
    assert waited.attributes is not None and waited.attributes["ducklm.approval.state"] == "approved"
    assert [link.context.trace_id for link in waited.links] == [decision.context.trace_id]
    assert waited.start_time is not None and waited.end_time is not None and waited.start_time <= waited.end_time
    # Memory's spans (the turns' recall, and the embedding it asked for) are inside it, under a turn.
    recalls = [s for s in task_spans if s.name == "ducklm.memory.v1.MemoryService/Recall"]
    assert recalls
    for recall in recalls:
        assert "invoke_agent DuckLM" in _ancestors(recall, finished)
    embeds = [s for s in task_spans if s.name == "ducklm.runtime.v1.EmbeddingService/Embed"]
    assert embeds and all("ducklm.memory.v1.MemoryService/Recall" in _ancestors(e, finished) for e in embeds)
    # Nothing of the task's turns is recorded in another trace.
    for name in ("chat scripted", "execute_tool write_file", "execute_tool list_dir", "invoke_agent DuckLM"):
        assert all(s.context.trace_id == task_trace_id(task_id) for s in finished if s.name == name), name


def _cause(turn: ReadableSpan) -> str:
    return str((turn.attributes or {}).get("ducklm.turn.cause", ""))


async def _turns_ended(spans: InMemorySpanExporter, count: int) -> bool:
    return sum(s.name == "invoke_agent DuckLM" for s in spans.get_finished_spans()) >= count


async def test_a_turn_cut_off_by_a_restart_resumes_in_the_tasks_trace(
    spans: InMemorySpanExporter, tmp_path: Path, scripted_model: ScriptedModel, peers: Peers, memory: GrpcServer
) -> None:
    """A runtime stopped while its model call hangs leaves the task running; the next runtime on
    the same database resumes it, in another process's memory but the same trace."""
    called = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        called.set()
        await reader.read()  # answers nothing until the runtime hangs up
        writer.close()

    stalled = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = stalled.sockets[0].getsockname()[1]
    settings = _runtime_settings(tmp_path, scripted_model, peers, memory)
    hung = settings.model_copy(update={
        "models_file": write_models_file(tmp_path / "hung.yaml", f"http://127.0.0.1:{port}/v1"),
    })
    server = await create_runtime(hung)
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
        stream = stub.StreamChat(runtime_pb2.ChatRequest(message="List my files"))
        first = await stream.read()
        assert isinstance(first, common_pb2.Event)
        task_id = first.task_id
        stream.cancel()  # the turn runs on without its caller
        await asyncio.wait_for(called.wait(), 10)
    await server.stop(grace=0)
    stalled.close()

    scripted_model.script([
        {"action": "call_tool", "tool": "list_dir", "arguments": {}},
        {"action": "finish", "message": "Done."},
    ])
    server = await create_runtime(settings)
    try:
        await until(lambda: _turns_ended(spans, 2), "the resumed turn to end")
    finally:
        await server.stop(grace=1.0)
    turns = [s for s in spans.get_finished_spans() if s.name == "invoke_agent DuckLM"]
    assert {s.context.trace_id for s in turns} == {task_trace_id(task_id)}
    assert sorted(_cause(s) for s in turns) == ["message", "recovery"]
    tool = _named(spans.get_finished_spans(), "execute_tool list_dir")
    assert tool.context.trace_id == task_trace_id(task_id)


async def test_an_embedding_is_a_model_call_span(spans: InMemorySpanExporter, runtime: GrpcServer) -> None:
    async with grpc.aio.insecure_channel(runtime.address) as channel:
        await runtime_pb2_grpc.EmbeddingServiceStub(channel).Embed(runtime_pb2.EmbedRequest(texts=["a", "bc"]))
    embedding = _named(spans.get_finished_spans(), "embeddings scripted-embed")
    assert embedding.kind is SpanKind.CLIENT and embedding.attributes is not None
    assert embedding.attributes["gen_ai.operation.name"] == "embeddings"
    assert embedding.attributes["gen_ai.request.model"] == "scripted-embed"
    assert embedding.parent is not None
    assert _named(spans.get_finished_spans(), "ducklm.runtime.v1.EmbeddingService/Embed").context.span_id == embedding.parent.span_id


async def test_a_chat_body_read_ahead_for_its_task_still_reaches_the_route_as_sent(
    spans: InMemorySpanExporter, gateway: httpx.AsyncClient
) -> None:
    broken = await gateway.post("/v1/chat", content=b'{"task_id": "abc", "message": ')
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "INVALID_ARGUMENT"
    unknown = await gateway.post("/v1/chat", json={"task_id": "f" * 32, "message": "hello"})
    assert unknown.status_code == 404
    requests = [s for s in spans.get_finished_spans() if s.name == "POST /v1/chat"]
    assert [s.context.trace_id == task_trace_id("f" * 32) for s in requests] == [False, True]
