"""/openapi.json describes every route, and schemathesis, fuzzing the real gateway from that
document, finds no server error and no response that breaks the document."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
from starlette.routing import Mount, Route

from services.gateway.app import create_app
from services.gateway.config import Settings
from tests.gateway.conftest import GatewayStack, scripted_stack
from tests.scripted_model import ScriptedModel


def test_every_route_is_described() -> None:
    described = {
        (path, method.upper()) for path, operations in create_openapi_paths().items() for method in operations
    }
    routed = {
        (route.path, method)
        for route in create_app(Settings()).routes
        # Pages, and DuckLM's MCP endpoint (its own protocol, docs/mcp.md), are not the REST API.
        if isinstance(route, Route) and route.path not in ("/", "/docs", "/mcp")
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert routed == described
    assert any(isinstance(route, Mount) for route in create_app(Settings()).routes)


def create_openapi_paths() -> dict[str, dict[str, object]]:
    from services.gateway.openapi import openapi_document

    paths: dict[str, dict[str, object]] = openapi_document()["paths"]
    return paths


async def test_the_document_is_served(api: httpx.AsyncClient) -> None:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert "/v1/chat/completions" in document["paths"]
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]


# A follow stream stays open until its client leaves, by design: the fuzzer reads streams to
# their end, so it only ever asks for streams that end when the task rests.
CONFIG = """
[[operations]]
include-path = "/v1/tasks/{task_id}/events"
parameters = { "query.follow" = "false" }
"""


async def test_schemathesis_finds_no_server_error(scripted: ScriptedModel, tmp_path: Path) -> None:
    # A stack of its own: the fuzzer fills memory and the task list with junk.
    async with scripted_stack(tmp_path / "stack", scripted) as stack:
        await run_schemathesis(stack, tmp_path)


async def run_schemathesis(gateway_stack: GatewayStack, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    # The CLI runs in its own process so this event loop keeps serving the scripted model.
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{gateway_stack.url}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "25",
        # One worker: hypothesis parses lambdas with `ast`, which CPython 3.11 does not allow
        # from several threads at once ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--seed",
        "7",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=540)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-8000:]
    assert "No issues found" in text or "passed" in text, text[-3000:]
