"""One task, one trace: the gateway's request, the runtime's Chat call and turn, its model calls
and the tools service's ExecuteTool all carry the same trace id, handed from service to service
over real HTTP-to-gRPC and gRPC metadata (each service's span has a remote parent). The gateway
app, the runtime and the tools service run in this process on real gRPC; an in-memory exporter
collects the spans."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common.server import GrpcServer
from services.gateway.app import create_app
from services.gateway.config import Settings as GatewaySettings
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.server import create_server as create_runtime
from tests.runtime.conftest import Peers, write_models_file
from tests.scripted_model import ScriptedModel

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
async def runtime(tmp_path: Path, scripted_model: ScriptedModel, peers: Peers) -> AsyncIterator[GrpcServer]:
    settings = RuntimeSettings(
        address="127.0.0.1:0", database=tmp_path / "runtime.db", decision="single",
        models_file=write_models_file(tmp_path / "models.yaml", scripted_model.endpoint),
        tools_address=peers.tools.address, skills_address=peers.skills.address, memory_address=peers.memory_address,
    )
    server = await create_runtime(settings)
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


@pytest.fixture
async def gateway(runtime: GrpcServer, peers: Peers) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewaySettings(
        runtime_address=runtime.address, tools_address=peers.tools.address, skills_address=peers.skills.address,
        memory_address=peers.memory_address,
    ))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                               headers={"Content-Type": "application/json"}, timeout=30)
    async with app.router.lifespan_context(app), client:
        yield client


def _named(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert found, f"no span {name!r} among {sorted({s.name for s in spans})}"
    return found[0]


async def test_one_task_is_one_trace_from_the_gateway_through_the_runtime_to_the_tools(
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

    trace_id = request.context.trace_id
    for part in (chat, turn, tool, executed, *models):
        assert part.context.trace_id == trace_id, part.name
    assert len(models) == 2
    # Each service continued its caller's span, handed over the wire (gRPC metadata).
    assert request.kind is SpanKind.SERVER and request.attributes is not None
    assert request.attributes["http.response.status_code"] == 200
    assert chat.kind is SpanKind.SERVER and chat.parent is not None and chat.parent.is_remote
    assert chat.parent.span_id == request.context.span_id
    assert executed.kind is SpanKind.SERVER and executed.parent is not None and executed.parent.is_remote
    assert executed.parent.span_id == tool.context.span_id
    assert turn.parent is not None and turn.parent.span_id == chat.context.span_id
    # GenAI conventions on the turn, the tool and the model calls.
    assert turn.attributes is not None and turn.attributes["gen_ai.conversation.id"] == task_id
    assert tool.attributes is not None and tool.attributes["gen_ai.tool.name"] == "list_dir"
    for model in models:
        assert model.attributes is not None and model.parent is not None
        assert model.attributes["gen_ai.operation.name"] == "chat"
        assert model.attributes["gen_ai.request.model"] == "scripted"
        assert int(str(model.attributes["gen_ai.usage.input_tokens"])) > 0
        assert model.parent.span_id == turn.context.span_id
