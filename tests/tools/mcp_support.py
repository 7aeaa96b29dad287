"""Helpers for the MCP tests: config/mcp.yaml entries for the probe server (mcp_probe_server.py)
and for the third-party `mcp-server-time` from PyPI, each visible in its sandbox only through
the folders it needs, and a wait for the tool listing a restarted server makes."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ducklm.tools.v1 import tools_pb2

from .support import ToolsClient

PROBE = Path(__file__).with_name("mcp_probe_server.py")


def python_paths() -> list[str]:
    """What a Python program of this environment needs to see: the virtual environment, the
    interpreter it was made from, and the folder of the probe server."""
    return sorted({sys.prefix, sys.base_prefix, str(PROBE.parent)})


def probe_server(state: Path, **extra: Any) -> dict[str, Any]:
    state.mkdir(parents=True, exist_ok=True)
    return {
        "command": sys.executable,
        "args": [str(PROBE), str(state)],
        "paths": python_paths(),
        "writable_paths": [str(state)],
        "call_timeout_seconds": 10,
        **extra,
    }


def time_server(**extra: Any) -> dict[str, Any]:
    return {
        "command": str(Path(sys.prefix) / "bin" / "mcp-server-time"),
        "args": ["--local-timezone", "UTC"],
        "paths": python_paths(),
        **extra,
    }


def write_mcp_config(path: Path, servers: dict[str, dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"servers": servers}))
    return path


def calls(state: Path) -> list[str]:
    """The calls the probe server received, in order."""
    log = state / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


async def listed(client: ToolsClient) -> dict[str, tools_pb2.Tool]:
    reply = await client.tools.ListTools(tools_pb2.ListToolsRequest(page_size=500))
    return {tool.name: tool for tool in reply.tools}


async def wait_for_listing(
    client: ToolsClient, ready: Callable[[dict[str, tools_pb2.Tool]], bool]
) -> dict[str, tools_pb2.Tool]:
    """The catalogue once `ready` holds for it (a restarted server lists its tools again just
    after the call that stopped it returned); the last one seen if it never does."""
    tools = await listed(client)
    for _ in range(300):
        if ready(tools):
            break
        await asyncio.sleep(0.05)
        tools = await listed(client)
    return tools


def schema_of(tool: tools_pb2.Tool) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(tool.arguments_schema)
    return schema
