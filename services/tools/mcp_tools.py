"""The tools of the configured MCP servers, as the executor sees them: catalogue entries named
`server.tool` with the server's description and input schema, and prepared calls bound to their
exact action (services/tools/mcp_actions.py).

Every MCP tool needs an approval unless config/mcp.yaml lists it in its server's `free_tools`;
the server's annotations are shown (in the description and in the approval), never trusted.
A stdio server is started inside the command sandbox (services/tools/sandbox.py) unless the
sandbox setting is off; a sandbox that cannot be created keeps the server from starting, never
runs it unsandboxed.

This module never runs a call without the executor's gate: `prepare` only checks and describes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from grpc_health.v1 import health, health_pb2
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from mcp import StdioServerParameters, stdio_client
from mcp.client._transport import TransportStreams
from mcp.client.streamable_http import streamable_http_client

from services.common.errors import InvalidArgument, NotFound
from services.common.server import GrpcServer
from services.tools.canonical import Action, canonical_value
from services.tools.catalogue import Risk, ToolSpec
from services.tools.mcp_actions import McpToolIdentity, mcp_action, mcp_pattern, schema_hash
from services.tools.mcp_config import McpConfig, McpServerConfig, expand, load_mcp_config
from services.tools.mcp_connection import Backoff, ListedTool, McpConnection, ServerStatus, TransportFactory
from services.tools.mcp_results import tool_result
from services.tools.patterns import Pattern
from services.tools.sandbox import Sandbox, ServerConfinement, sandbox_failure

__all__ = ["MCP_HEALTH_PREFIX", "McpCall", "McpLimits", "McpTool", "McpTools", "open_mcp_tools"]

log = logging.getLogger(__name__)

# Each configured server's gRPC health name is this prefix and its name: SERVING while connected.
MCP_HEALTH_PREFIX = "ducklm.tools.v1.McpServer/"
# Tool names MCP allows; anything else is left out of the catalogue (and logged).
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,128}$")


@dataclass(frozen=True)
class McpLimits:
    # Most characters of text (and structured content) one result keeps.
    max_result_chars: int
    backoff: Backoff
    # The PATH a sandboxed server gets (the policy's search path), its program's folder added.
    search_path: str


@dataclass(frozen=True)
class McpTool:
    spec: ToolSpec
    identity: McpToolIdentity
    requires_approval: bool
    validator: Draft202012Validator


@dataclass(frozen=True)
class McpCall:
    """A checked call: its action, whether it needs an approval, and how to run it."""

    action: Action
    needs_approval: bool
    pattern: Pattern
    run: Callable[[], Awaitable[dict[str, Any]]]


class McpTools:
    """Every configured server's connection and its tools."""

    def __init__(
        self,
        config: McpConfig,
        sandbox: Sandbox | None,
        limits: McpLimits,
        policy_version: str,
    ) -> None:
        self.config = config
        self._health: health.aio.HealthServicer | None = None
        self._sandbox = sandbox
        self._limits = limits
        self._policy_version = policy_version
        self.connections: dict[str, McpConnection] = {}
        self._built: dict[str, tuple[tuple[ListedTool, ...], list[McpTool]]] = {}
        for name, server in config.servers.items():
            if not server.enabled:
                continue
            self.connections[name] = McpConnection(
                name,
                self._transport(server),
                start_timeout=server.start_timeout_seconds,
                call_timeout=server.call_timeout_seconds,
                on_change=self._report,
                backoff=limits.backoff,
            )

    async def serve(self, server: GrpcServer, wait_seconds: float) -> None:
        """Starts every server, reporting each one's state as the health of `server` and stopping
        them with it; waits (at most `wait_seconds`) until each first start succeeded or failed."""
        self._health = server.health
        for connection in self.connections.values():
            await self._report(connection.status)
        server.add_cleanup(self.stop)
        for connection in self.connections.values():
            connection.start()
        await asyncio.gather(*(connection.wait_settled(wait_seconds) for connection in self.connections.values()))

    async def _report(self, status: ServerStatus) -> None:
        if self._health is not None:
            serving = status.state == "ready"
            await self._health.set(
                MCP_HEALTH_PREFIX + status.name,
                health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING,
            )

    async def stop(self) -> None:
        for connection in self.connections.values():
            await connection.stop()

    def tools(self) -> list[McpTool]:
        """The tools of every server's latest listing, in config order."""
        found: list[McpTool] = []
        for name, connection in self.connections.items():
            listing = connection.tools
            cached = self._built.get(name)
            if cached is None or cached[0] is not listing:
                # Built once per listing: checking schemas and compiling validators takes time.
                server = self.config.servers[name]
                built = [tool for listed in listing if (tool := self._tool(name, server, listed)) is not None]
                cached = (listing, built)
                self._built[name] = cached
            found.extend(cached[1])
        return found

    def _tool(self, name: str, server: McpServerConfig, listed: ListedTool) -> McpTool | None:
        if not _TOOL_NAME.fullmatch(listed.name):
            log.warning("MCP server '%s' lists a tool named %r, which DuckLM cannot name; left out", name, listed.name)
            return None
        schema = listed.input_schema
        try:
            Draft202012Validator.check_schema(schema)
            canonical_value(schema)
        except (SchemaError, InvalidArgument) as exc:
            log.warning("MCP tool '%s.%s' has an invalid input schema (%s); left out", name, listed.name, exc)
            return None
        identity = McpToolIdentity(
            name=f"{name}.{listed.name}",
            server=name,
            tool=listed.name,
            server_identity=server.identity(),
            server_text=server.identity_text(),
            input_schema_sha256=schema_hash(schema),
            annotations=listed.annotations,
        )
        free = listed.name in server.free_tools
        description = listed.description.strip() or f"The '{listed.name}' tool."
        description += f" (Tool of the MCP server '{name}'"
        if listed.annotations:
            description += f"; the server describes it as {json.dumps(listed.annotations, sort_keys=True)}"
        description += "; runs at once.)" if free else "; each call waits for a human approval.)"
        spec = ToolSpec(identity.name, description, schema, Risk.DANGEROUS)
        return McpTool(spec, identity, not free, Draft202012Validator(schema))

    def prepare(self, tool_name: str, arguments: dict[str, Any]) -> McpCall:
        """Checks a call against the tool's listed schema; raises NotFound or InvalidArgument."""
        tool = next((tool for tool in self.tools() if tool.spec.name == tool_name), None)
        if tool is None:
            raise NotFound(f"unknown tool '{tool_name}'; ListTools gives the catalogue")
        args = canonical_value(arguments)
        error = best_match(tool.validator.iter_errors(args))
        if error is not None:
            where = error.json_path if error.path else "arguments"
            raise InvalidArgument(f"{tool_name}: {where}: {error.message}")
        action = mcp_action(tool.identity, args, self._policy_version)
        connection = self.connections[tool.identity.server]
        identity = tool.identity
        max_chars = self._limits.max_result_chars

        async def run() -> dict[str, Any]:
            result = await connection.call(identity.tool, args)
            return tool_result(identity.server, identity.tool, result, max_chars)

        return McpCall(action, tool.requires_approval, mcp_pattern(identity, self._policy_version), run)

    def _transport(self, server: McpServerConfig) -> TransportFactory:
        if server.transport == "http":
            return _http_transport(server)
        return self._stdio_transport(server)

    def _stdio_transport(self, server: McpServerConfig) -> TransportFactory:
        def connect() -> AbstractAsyncContextManager[TransportStreams]:
            program = server.command if os.path.isabs(server.command) else shutil.which(server.command)
            if program is None:
                raise FileNotFoundError(f"the program '{server.command}' was not found on PATH")
            env = {
                "PATH": f"{os.path.dirname(program)}:{self._limits.search_path}",
                "HOME": "/tmp",
                "LANG": "C.UTF-8",
                **{key: expand(value) for key, value in server.env.items()},
            }
            if self._sandbox is None:
                params = StdioServerParameters(command=program, args=server.args, env=env, cwd=server.cwd or None)
                return stdio_client(params)
            if self._sandbox.problem is not None:
                raise sandbox_failure(self._sandbox.problem)
            prefix = self._sandbox.server_prefix(
                ServerConfinement(
                    read_only=tuple(server.paths),
                    writable=tuple(server.writable_paths),
                    workspace=server.workspace,
                    network=server.network,
                    cwd=server.cwd or "/",
                    env=env,
                )
            )
            params = StdioServerParameters(command=prefix[0], args=[*prefix[1:], program, *server.args])
            return stdio_client(params)

        return connect


async def open_mcp_tools(
    config_file: Path, sandbox: Sandbox | None, limits: McpLimits, policy_version: str
) -> McpTools:
    """The servers of `config_file` (none if it is absent or empty), not started yet."""
    # Blocking: reads the file.
    config = await asyncio.to_thread(load_mcp_config, config_file)
    return McpTools(config, sandbox, limits, policy_version)


def _http_transport(server: McpServerConfig) -> TransportFactory:
    def connect() -> AbstractAsyncContextManager[TransportStreams]:
        headers = {key: expand(value) for key, value in server.headers.items()}
        return _http(server.url, headers)

    return connect


@asynccontextmanager
async def _http(url: str, headers: dict[str, str]) -> AsyncIterator[TransportStreams]:
    # The SDK's own default timeouts: 30 s to connect and write, 300 s for a held-open stream.
    timeout = httpx2.Timeout(30.0, read=300.0)
    http = httpx2.AsyncClient(headers=headers, timeout=timeout)
    async with http, streamable_http_client(url, http_client=http) as streams:
        yield streams
