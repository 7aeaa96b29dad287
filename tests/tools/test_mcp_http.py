"""A streamable-HTTP MCP server behind the tools service: a small server written with the SDK,
served by uvicorn on a free port, reached at its URL with the configured headers (a token taken
from the environment, never from the file), its calls gated like a stdio server's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

from services.common.testing import free_port

from .mcp_support import listed, write_mcp_config
from .support import StartTools

TOKEN = "http-mcp-token-0123456789"


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[str, list[str]]]:
    """The server's URL, and the Authorization header of every call it ran."""
    seen: list[str] = []
    server = MCPServer("remote")

    @server.tool()
    def whoami(ctx: Context) -> str:
        """Says which Authorization header the call came with."""
        header = (ctx.headers or {}).get("authorization", "")
        seen.append(header)
        return f"called with {header}"

    port = free_port()
    app = server.streamable_http_app()
    # A client may hold a stream open (its subscription to tool changes): shutdown does not wait for it.
    web = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", timeout_graceful_shutdown=1))
    task = asyncio.create_task(web.serve())
    while not web.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp", seen
    finally:
        web.should_exit = True
        await task


async def test_http_server_tools_run_with_its_headers_under_approval(
    start_tools: StartTools, tmp_path: Path, http_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = http_server
    monkeypatch.setenv("REMOTE_MCP_TOKEN", TOKEN)
    remote = {"url": url, "headers": {"Authorization": "Bearer ${REMOTE_MCP_TOKEN}"}}
    client = await start_tools(mcp_config_file=write_mcp_config(tmp_path / "mcp.yaml", {"remote": remote}))
    tools = await listed(client)
    assert tools["remote.whoami"].requires_approval

    refused = await client.execute("remote.whoami", {})
    assert refused.reason == "APPROVAL_REQUIRED"
    assert seen == []

    approval = await client.request_approval("remote.whoami", {})
    # The approval names the URL; the token is in no approval.
    assert url in approval.working_directory
    assert TOKEN not in approval.canonical_action
    await client.approve(approval.id)
    done = await client.execute("remote.whoami", {}, approval_id=approval.id)
    assert done.ok, done
    assert done.result["text"] == f"called with Bearer {TOKEN}"
    assert seen == [f"Bearer {TOKEN}"]


async def test_unset_header_variable_keeps_the_server_down(
    start_tools: StartTools, tmp_path: Path, http_server: tuple[str, list[str]]
) -> None:
    url, _ = http_server
    remote = {"url": url, "headers": {"Authorization": "Bearer ${DUCKLM_TEST_UNSET_TOKEN}"}}
    config = write_mcp_config(tmp_path / "mcp.yaml", {"remote": remote})
    client = await start_tools(mcp_config_file=config)
    # Reachable, but never called without its token: no empty or literal "${...}" header is sent.
    assert not [name for name in await listed(client) if name.startswith("remote.")]
    reply = await client.execute("remote.whoami", {})
    assert reply.code == "NOT_FOUND"
