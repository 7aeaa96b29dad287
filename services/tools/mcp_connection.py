"""One MCP server, kept connected: started (or reached), its tools listed, restarted with backoff
when it crashes, hangs or closes the connection, and its state reported on every change.

The official SDK's `Client` speaks the current protocol revision and falls back to the
initialize handshake for older servers (`mode="auto"`). Its context is entered and left by one
supervising task (the SDK's task groups must be), while calls come from the gRPC handlers'
tasks. The listing the catalogue shows is the one made at the latest start; a call whose
server answers that its schema changed is refused and the server is listed again.

This module never decides whether a call may run; the executor does that before `call`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.client._transport import TransportStreams
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import CONNECTION_CLOSED, HEADER_MISMATCH, REQUEST_TIMEOUT
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from services.common.errors import DeadlineExceeded, FailedPrecondition, Unavailable

__all__ = ["Backoff", "ListedTool", "McpConnection", "ServerStatus", "TransportFactory"]

log = logging.getLogger(__name__)

# A fresh transport (an SDK stdio or streamable-HTTP context) for each start.
TransportFactory = Callable[[], AbstractAsyncContextManager[TransportStreams]]
# Most pages of tools/list read from one server.
_MAX_PAGES = 100


@dataclass(frozen=True)
class ListedTool:
    """One tool as its server listed it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    # The server's own hints (readOnlyHint, destructiveHint, ...), camelCase as on the wire.
    annotations: dict[str, Any]


@dataclass(frozen=True)
class ServerStatus:
    name: str
    # "starting", "ready", "restarting" (waiting out the backoff) or "stopped".
    state: str
    restarts: int
    last_error: str


@dataclass(frozen=True)
class Backoff:
    """Waits before restart n (1, 2, ...): `first` * 2**(n-1), at most `longest`; the count
    starts over once a connection stayed up `reset_after` seconds."""

    first: float = 0.5
    longest: float = 30.0
    reset_after: float = 60.0

    def delay(self, attempt: int) -> float:
        return float(min(self.first * 2 ** max(attempt - 1, 0), self.longest))


@asynccontextmanager
async def _watched(transport: AbstractAsyncContextManager[TransportStreams], closed: Callable[[], None]) -> AsyncIterator[TransportStreams]:
    """The transport's streams, with `closed` called when the server's side ends (a stdio
    server's exit closes its stdout, which ends the read stream)."""
    async with transport as (read, write):
        sender, receiver = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def forward() -> None:
            try:
                async with sender:
                    async for item in read:
                        await sender.send(item)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            finally:
                closed()

        async with anyio.create_task_group() as group:
            group.start_soon(forward)
            try:
                yield receiver, write
            finally:
                group.cancel_scope.cancel()


class McpConnection:
    """The supervisor of one server's connection."""

    def __init__(
        self,
        name: str,
        connect: TransportFactory,
        *,
        start_timeout: float,
        call_timeout: float,
        on_change: Callable[[ServerStatus], Awaitable[None]],
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self._connect = connect
        self._start_timeout = start_timeout
        self._call_timeout = call_timeout
        self._on_change = on_change
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self._client: Client | None = None
        self._tools: tuple[ListedTool, ...] = ()
        self._status = ServerStatus(name, "starting", 0, "")
        self._wake = asyncio.Event()
        self._wake_reason = ""
        # Set when a server on an older protocol revision says its tools changed.
        self._changed = asyncio.Event()
        self._ready = asyncio.Event()
        # Set once the first start ended either way (ready, or failed and waiting to retry).
        self._settled = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> ServerStatus:
        return self._status

    @property
    def tools(self) -> tuple[ListedTool, ...]:
        """The tools of the latest listing (kept while the server restarts)."""
        return self._tools

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"mcp server {self.name}")

    async def wait_settled(self, timeout: float) -> bool:
        """Waits (at most `timeout` seconds) until the first start succeeded or failed; returns
        whether the server is ready for calls."""
        try:
            await asyncio.wait_for(self._settled.wait(), timeout)
        except TimeoutError:
            pass
        return self._ready.is_set()

    async def stop(self) -> None:
        self._stopping = True
        self._restart("the tools service is stopping")
        task = self._task
        if task is None:
            return
        if self._status.state != "ready":
            # Starting or waiting out a backoff: nothing to wind down politely.
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _restart(self, reason: str) -> None:
        if not self._wake.is_set():
            self._wake_reason = reason
            self._wake.set()

    async def _set(self, state: str, error: str | None = None) -> None:
        status = self._status
        restarts = status.restarts + (1 if state == "restarting" else 0)
        self._status = ServerStatus(self.name, state, restarts, status.last_error if error is None else error)
        if state in ("ready", "restarting"):
            self._settled.set()
        try:
            await self._on_change(self._status)
        except Exception:  # a report that failed must not stop the supervision
            log.exception("reporting the state of MCP server '%s' failed", self.name)

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            started = self._clock()
            error = await self._run_once()
            if self._stopping:
                break
            if self._clock() - started >= self._backoff.reset_after:
                attempt = 0
            attempt += 1
            log.warning("MCP server '%s' stopped (%s); restarting (attempt %d)", self.name, error, attempt)
            await self._set("restarting", error)
            await self._sleep(self._backoff.delay(attempt))
            await self._set("starting")
        await self._set("stopped")

    async def _run_once(self) -> str:
        """Connects, lists, serves calls until woken; returns why it ended."""
        self._wake = asyncio.Event()
        self._wake_reason = ""
        scope = anyio.CancelScope()
        timer = asyncio.get_running_loop().call_later(self._start_timeout, scope.cancel)
        try:
            with scope:
                transport = _watched(self._connect(), lambda: self._restart("the server closed the connection"))
                # No response cache: every listing must be the server's own, now.
                self._changed = asyncio.Event()
                client = Client(transport, mode="auto", cache=None, message_handler=self._on_message)
                async with client:
                    tools = await _list_tools(client)
                    timer.cancel()
                    self._tools = tools
                    self._client = client
                    self._ready.set()
                    await self._set("ready", "")
                    try:
                        async with anyio.create_task_group() as group:
                            group.start_soon(self._follow_listing, client)
                            await self._wake.wait()
                            group.cancel_scope.cancel()
                    finally:
                        self._ready.clear()
                        self._client = None
            if scope.cancelled_caught:
                return f"it did not start and list its tools within {self._start_timeout:g} s"
            return self._wake_reason or "the connection ended"
        except Exception as exc:  # noqa: BLE001 - any start-up failure is reported and retried, never raised
            return _describe(exc)
        finally:
            timer.cancel()

    async def _on_message(self, message: types.ServerNotification | Exception) -> None:
        # A server on an older protocol revision says so with a notification.
        if isinstance(message, types.ToolListChangedNotification):
            self._changed.set()

    async def _follow_listing(self, client: Client) -> None:
        """Lists the tools again whenever the server says they changed: by a subscription on the
        current protocol revision, by notification on older ones. The new listing (a changed
        schema has a new hash) is what the next approval is bound to."""
        if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            tools = client.server_capabilities.tools
            if tools is None or not tools.list_changed:
                return
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    async for _ in subscription:
                        await self._relist(client)
            except Exception as exc:  # noqa: BLE001 - the server keeps serving without the subscription
                log.warning("MCP server '%s': tool changes are not followed (%s)", self.name, _describe(exc))
            return
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self._relist(client)

    async def _relist(self, client: Client) -> None:
        try:
            self._tools = await _list_tools(client)
        except Exception as exc:  # noqa: BLE001 - a failed listing ends this connection, to start over
            self._restart(f"listing its changed tools failed ({_describe(exc)})")
            return
        log.info("MCP server '%s' changed its tools; listed %d", self.name, len(self._tools))

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Calls one tool; a hung or crashed server is restarted and the call reported failed."""
        client = self._client
        if client is None:
            raise FailedPrecondition(
                f"MCP server '{self.name}' is not running ({self._status.state}: "
                f"{self._status.last_error or 'starting'}); try again once it is",
                reason="MCP_SERVER_DOWN",
            )
        try:
            return await client.session.call_tool(tool, arguments, read_timeout_seconds=self._call_timeout)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                self._restart(f"a call of '{tool}' got no answer within {self._call_timeout:g} s")
                raise DeadlineExceeded(
                    f"MCP server '{self.name}' did not answer '{tool}' within {self._call_timeout:g} s; it is "
                    "being restarted (the call may have partly run)",
                    reason="MCP_SERVER_TIMEOUT",
                ) from None
            if exc.code == CONNECTION_CLOSED:
                self._restart(f"the connection closed during a call of '{tool}'")
                raise Unavailable(
                    f"MCP server '{self.name}' closed the connection during '{tool}' (it may have crashed; "
                    "it is being restarted, and the call may have partly run)",
                    reason="MCP_SERVER_CRASHED",
                ) from None
            if exc.code == HEADER_MISMATCH:
                self._restart(f"it says the schema of '{tool}' changed")
                raise FailedPrecondition(
                    f"MCP server '{self.name}' says the schema of '{tool}' changed; it is listed again and "
                    "the call needs a new approval",
                    reason="MCP_SCHEMA_CHANGED",
                ) from None
            raise FailedPrecondition(
                f"MCP server '{self.name}' refused '{tool}': {exc}", reason="MCP_CALL_FAILED"
            ) from None
        except (ValidationError, RuntimeError) as exc:
            raise FailedPrecondition(
                f"MCP server '{self.name}' answered '{tool}' with something DuckLM cannot use: {exc}",
                reason="MCP_CALL_FAILED",
            ) from None


def _describe(exc: BaseException) -> str:
    """What went wrong, read through the task groups' exception groups to the first cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _list_tools(client: Client) -> tuple[ListedTool, ...]:
    tools: list[ListedTool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else {}
            tools.append(ListedTool(tool.name, tool.description or "", dict(tool.input_schema), annotations))
        cursor = page.next_cursor
        if not cursor:
            break
    return tuple(tools)
