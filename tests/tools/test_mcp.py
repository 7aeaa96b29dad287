"""MCP servers behind the tools service, over real gRPC: the probe server (written with the SDK)
and the third-party `mcp-server-time` from PyPI, both started over stdio in the real bubblewrap
sandbox. Listing, calls with and without an approval, results, clipping, a crash and restart, a
hung server and the sandbox's limits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.tools.mcp_tools import MCP_HEALTH_PREFIX

from .mcp_support import (
    calls,
    listed,
    probe_server,
    schema_of,
    time_server,
    write_mcp_config,
)
from .support import SECRET, StartTools, ToolsClient


async def start_mcp(
    start_tools: StartTools, tmp_path: Path, servers: dict[str, dict[str, Any]], **settings: Any
) -> ToolsClient:
    config = write_mcp_config(tmp_path / "mcp.yaml", servers)
    settings.setdefault("mcp_restart_backoff_seconds", 0.01)
    return await start_tools(mcp_config_file=config, **settings)


async def health_of(client: ToolsClient, server: str) -> int:
    stub = health_pb2_grpc.HealthStub(client.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=MCP_HEALTH_PREFIX + server))
    status: int = reply.status
    return status


async def test_tools_of_both_servers_are_listed_with_schema_and_approval(start_tools: StartTools, tmp_path: Path) -> None:
    servers = {"probe": probe_server(tmp_path / "state", free_tools=["shout"]), "time": time_server()}
    client = await start_mcp(start_tools, tmp_path, servers)
    tools = await listed(client)
    assert {"probe.echo", "probe.shout", "time.get_current_time", "time.convert_time"} <= set(tools)
    # Built-in tools are still there, first.
    assert next(iter(tools)) == "read_file"
    echo = tools["probe.echo"]
    assert schema_of(echo)["required"] == ["text"]
    assert schema_of(tools["time.get_current_time"])["required"] == ["timezone"]
    # The server's readOnlyHint is shown, and does not spare an approval.
    assert '"readOnlyHint": true' in echo.description
    assert echo.requires_approval
    assert tools["time.get_current_time"].requires_approval
    assert not tools["probe.shout"].requires_approval
    assert await health_of(client, "probe") == health_pb2.HealthCheckResponse.SERVING


async def test_absent_config_means_no_mcp_tools(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start_tools(mcp_config_file=tmp_path / "missing.yaml")
    assert not [name for name in await listed(client) if "." in name]


async def test_third_party_time_server_runs_only_with_an_approval(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start_mcp(start_tools, tmp_path, {"time": time_server()})
    arguments = {"timezone": "Asia/Tokyo"}
    refused = await client.execute("time.get_current_time", arguments)
    assert (refused.code, refused.reason) == ("APPROVAL_REQUIRED", "APPROVAL_REQUIRED")
    done = await client.execute_approved("time.get_current_time", arguments)
    assert done.ok, done
    assert done.result["structured_content"]["timezone"] == "Asia/Tokyo"
    assert "+09:00" in done.result["text"]
    assert done.result["is_error"] is False


async def test_call_without_approval_never_reaches_the_server(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_mcp(start_tools, tmp_path, {"probe": probe_server(state)})
    reply = await client.execute("probe.echo", {"text": "hello"})
    assert (reply.code, reply.reason) == ("APPROVAL_REQUIRED", "APPROVAL_REQUIRED")
    assert calls(state) == []
    done = await client.execute_approved("probe.echo", {"text": "hello"})
    assert done.ok, done
    assert done.result["text"] == "hello"
    assert done.result["structured_content"] == {"result": "hello"}
    assert calls(state) == ["echo hello"]


async def test_free_tool_runs_at_once(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_mcp(start_tools, tmp_path, {"probe": probe_server(state, free_tools=["shout"])})
    done = await client.execute("probe.shout", {"text": "quack"})
    assert done.ok, done
    assert done.result["text"] == "QUACK"


async def test_arguments_are_checked_against_the_listed_schema(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_mcp(start_tools, tmp_path, {"probe": probe_server(state, free_tools=["shout"])})
    reply = await client.execute("probe.shout", {"words": "quack"})
    assert reply.code == "INVALID_ARGUMENT"
    assert "text" in reply.details
    assert calls(state) == []


async def test_oversized_result_is_clipped_with_a_note(start_tools: StartTools, tmp_path: Path) -> None:
    servers = {"probe": probe_server(tmp_path / "state", free_tools=["big"])}
    client = await start_mcp(start_tools, tmp_path, servers, mcp_max_result_chars=1000)
    done = await client.execute("probe.big", {"chars": 50_000})
    assert done.ok, done
    assert done.truncated
    assert done.result["text"] == "x" * 1000
    assert "50000" in done.result["note"]
    # The structured copy of the same text does not fit either: left out, and said so.
    assert "structured_content" not in done.result
    assert "structured content" in done.result["note"]


async def test_other_content_is_summarised(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start_mcp(start_tools, tmp_path, {"probe": probe_server(tmp_path / "state", free_tools=["picture"])})
    done = await client.execute("probe.picture", {})
    assert done.ok, done
    assert "a red dot" in done.result["text"]
    assert len(done.result["other_content"]) == 1
    assert done.result["other_content"][0].startswith("image (image/png")


async def test_crashed_server_is_restarted_and_reported(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_mcp(start_tools, tmp_path, {"probe": probe_server(state, free_tools=["crash", "shout"])})
    reply = await client.execute("probe.crash", {})
    assert (reply.code, reply.reason) == ("UNAVAILABLE", "MCP_SERVER_CRASHED")
    # It comes back by itself, just after the reply: a call may find it still starting.
    for _ in range(300):
        done = await client.execute("probe.shout", {"text": "back"})
        if done.reason != "MCP_SERVER_DOWN":
            break
        await asyncio.sleep(0.05)
    assert done.ok, done
    assert done.result["text"] == "BACK"
    assert calls(state) == ["crash", "shout back"]
    assert await health_of(client, "probe") == health_pb2.HealthCheckResponse.SERVING


async def test_server_that_cannot_start_is_reported_not_serving(start_tools: StartTools, tmp_path: Path) -> None:
    broken = {"command": "/bin/false", "start_timeout_seconds": 5}
    client = await start_mcp(start_tools, tmp_path, {"broken": broken})
    assert await health_of(client, "broken") == health_pb2.HealthCheckResponse.NOT_SERVING
    assert not [name for name in await listed(client) if name.startswith("broken.")]


async def test_hung_server_times_out_and_is_restarted(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = probe_server(state, free_tools=["hang", "shout"], call_timeout_seconds=1)
    client = await start_mcp(start_tools, tmp_path, {"probe": server})
    reply = await client.execute("probe.hang", {})
    assert (reply.code, reply.reason) == ("DEADLINE_EXCEEDED", "MCP_SERVER_TIMEOUT")
    for _ in range(300):
        done = await client.execute("probe.shout", {"text": "again"})
        if done.reason != "MCP_SERVER_DOWN":
            break
        await asyncio.sleep(0.05)
    assert done.ok, done
    assert calls(state)[-1] == "shout again"


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on the host's loopback that accepts connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def test_stdio_server_sees_only_its_declared_paths_and_no_network(
    start_tools: StartTools, tmp_path: Path, outside: Path, listener: int
) -> None:
    state = tmp_path / "state"
    free = ["read_path", "connect"]
    client = await start_mcp(start_tools, tmp_path, {"probe": probe_server(state, free_tools=free)})
    secret = await client.execute("probe.read_path", {"path": str(outside / "secret.txt")})
    assert secret.ok, secret
    assert SECRET not in secret.result["text"]
    assert secret.result["text"].startswith("cannot read")
    # Its own state folder is declared writable, so it sees it (the log it wrote is there).
    own = await client.execute("probe.read_path", {"path": str(state / "calls.log")})
    assert "read_path" in own.result["text"]
    # Neither the workspace nor the network, unless config allows them.
    (client.workspace / "notes.txt").write_text("workspace file")
    hidden = await client.execute("probe.read_path", {"path": str(client.workspace / "notes.txt")})
    assert hidden.result["text"].startswith("cannot read")
    offline = await client.execute("probe.connect", {"port": listener})
    assert offline.result["text"].startswith("failed")


async def test_network_and_workspace_when_config_allows(
    start_tools: StartTools, tmp_path: Path, listener: int
) -> None:
    state = tmp_path / "state"
    server = probe_server(state, free_tools=["read_path", "connect"], network=True, workspace="read-only")
    client = await start_mcp(start_tools, tmp_path, {"probe": server})
    (client.workspace / "notes.txt").write_text("workspace file")
    seen = await client.execute("probe.read_path", {"path": str(client.workspace / "notes.txt")})
    assert seen.result["text"] == "workspace file"
    online = await client.execute("probe.connect", {"port": listener})
    assert online.result["text"] == "connected"
