"""DuckLM as an MCP server: streamable HTTP at /mcp on the gateway, behind the gateway's own
token (services/gateway/auth.py), so an MCP host can hand DuckLM work and watch it.

Tools: start a chat task, continue it, read its events and status, list pending approvals, and
approve or deny one. Approve and deny need a human credential on the HTTP request itself: the
`X-DuckLM-Approver-Token` header holding the approver credential (DUCKLM_APPROVER_TOKEN), which
a person puts in their MCP host's server config and a model never sees. The gateway token alone
(what a host's model acts with) never decides an approval. Who decided is recorded as the
approver credential's principal "via mcp", never from a tool argument.

Each tool is one backend call translated, as the REST routes are; this module holds no state
but the SDK's sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Annotated, Any, Literal, cast

import grpc
from ducklm.approvals.v1 import approvals_pb2
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field
from starlette.routing import Route

from services.common.auth import approver_metadata
from services.gateway.backends import Backends
from services.gateway.config import Settings
from services.gateway.convert import APPROVAL_SCOPES, APPROVAL_STATES, event_json, task_json
from services.gateway.convert import approval_json as approval_body

__all__ = ["APPROVER_HEADER", "McpEndpoint"]

# The header carrying the human credential that approve and deny require.
APPROVER_HEADER = "x-ducklm-approver-token"
_MESSAGE = Annotated[str, Field(min_length=1, max_length=32_000, description="The user's message.")]
_ID = Annotated[str, Field(min_length=1, max_length=128)]
_READS = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


def _failed(error: grpc.aio.AioRpcError, service: str) -> ToolError:
    reason = next((str(value) for key, value in error.initial_metadata() or () if key == "ducklm-error-reason"), "")
    suffix = f" ({reason})" if reason else ""
    return ToolError(f"{service}: {error.code().name}: {error.details() or error.code().name}{suffix}")


class McpEndpoint:
    """The MCP server, its session manager (run for the app's lifetime) and its route."""

    def __init__(self, settings: Settings, backends: Callable[[], Backends]) -> None:
        self._settings = settings
        self._backends = backends
        self.server = MCPServer(
            "ducklm",
            instructions=(
                "DuckLM runs agent tasks on this machine. start_chat opens a task with a message; "
                "read_events follows it; a task that waits for an approval continues once a person "
                "approves it."
            ),
        )
        self._add_tools()
        # The gateway's site guard already refuses foreign Host headers and cross-site requests.
        self.server.streamable_http_app(
            streamable_http_path="/mcp",
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.sessions: StreamableHTTPSessionManager = self.server.session_manager
        self.route = Route("/mcp", endpoint=StreamableHTTPASGIApp(self.sessions), methods=["GET", "POST", "DELETE"])

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Runs the session manager for the app's lifetime, in a task of its own: its task group
        must be left in the task that entered it, and an app's lifespan may be entered and left
        in different tasks (a test fixture's setup and teardown)."""
        started, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with self.sessions.run():
                started.set()
                await stop.wait()

        holder = asyncio.create_task(hold(), name="mcp-sessions")
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait({holder, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if holder.done():
            waiting.cancel()
            await holder  # it failed to start: raise why
        try:
            yield
        finally:
            stop.set()
            await holder

    async def _open_chat(self, message: str, task_id: str, skill: str) -> dict[str, Any]:
        """Sends the message and returns once the task has it (the turn goes on in the runtime)."""
        backends = self._backends()
        request = runtime_pb2.ChatRequest(message=message, task_id=task_id, skill=skill)
        stream = backends.runtime.StreamChat(request, timeout=self._settings.chat_timeout_seconds)
        try:
            first = await stream.read()
        except grpc.aio.AioRpcError as exc:
            raise _failed(exc, "runtime") from None
        finally:
            # Only the stream stops: the task's turn runs on, and read_events follows it.
            stream.cancel()
        if first is grpc.aio.EOF:
            raise ToolError("runtime: the chat stream ended before the task started")
        event = cast(common_pb2.Event, first)
        return await self._task_status(event.task_id)

    async def _task_status(self, task_id: str) -> dict[str, Any]:
        backends = self._backends()
        try:
            task = await backends.runtime.GetTask(runtime_pb2.GetTaskRequest(task_id=task_id), timeout=backends.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _failed(exc, "runtime") from None
        return {"task_id": task.id, "task": task_json(task)}

    def _human(self, headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
        token = self._settings.approver_token
        given = (headers or {}).get(APPROVER_HEADER, "")
        if not token:
            raise ToolError("this gateway holds no approver credential, so nobody can decide approvals here")
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise ToolError(
                "approving or denying needs a person's approver credential in the "
                f"'{APPROVER_HEADER}' header of this MCP connection (set in the host's server config, "
                "never given to a model); decide in WebChat otherwise"
            )
        return approver_metadata(token, "mcp")

    def _add_tools(self) -> None:
        server = self.server

        @server.tool(description="Open a new DuckLM task with a message; returns its id and status at once.")
        async def start_chat(message: _MESSAGE, skill: str = "") -> dict[str, Any]:
            return await self._open_chat(message, "", skill)

        @server.tool(description="Send another message to an existing task (it resumes from where it rested).")
        async def continue_chat(task_id: _ID, message: _MESSAGE) -> dict[str, Any]:
            return await self._open_chat(message, task_id, "")

        @server.tool(
            description="Read a task's status and its events in order, a page at a time (pass next_page_token on).",
            annotations=_READS,
        )
        async def read_events(
            task_id: _ID, page_token: str = "", page_size: Annotated[int, Field(ge=0, le=1000)] = 100
        ) -> dict[str, Any]:
            backends = self._backends()
            request = runtime_pb2.ListTaskEventsRequest(task_id=task_id, page_size=page_size, page_token=page_token)
            try:
                reply = await backends.runtime.ListTaskEvents(request, timeout=backends.timeout)
            except grpc.aio.AioRpcError as exc:
                raise _failed(exc, "runtime") from None
            status = await self._task_status(task_id)
            return {
                **status,
                "events": [event_json(event) for event in reply.events],
                "next_page_token": reply.next_page_token,
            }

        @server.tool(description="List the approvals waiting for a person's decision (of one task, or all).", annotations=_READS)
        async def list_pending_approvals(task_id: str = "") -> dict[str, Any]:
            backends = self._backends()
            request = approvals_pb2.ListApprovalsRequest(
                page_size=500, state=APPROVAL_STATES["pending"], task_id=task_id  # type: ignore[arg-type]
            )
            try:
                reply = await backends.approvals.ListApprovals(request, timeout=backends.timeout)
            except grpc.aio.AioRpcError as exc:
                raise _failed(exc, "tools") from None
            return {"approvals": [approval_body(approval) for approval in reply.approvals]}

        @server.tool(
            description=(
                "Approve a pending approval: once, for the rest of its task, or (task_pattern) every call of its "
                f"pattern in the task. Needs a person's approver credential in the '{APPROVER_HEADER}' header."
            )
        )
        async def approve(
            approval_id: _ID,
            ctx: Context,
            scope: Literal["once", "task", "task_pattern"] = "once",
            reason: Annotated[str, Field(max_length=2000)] = "",
        ) -> dict[str, Any]:
            metadata = self._human(ctx.headers)
            backends = self._backends()
            request = approvals_pb2.ApproveRequest(
                approval_id=approval_id, scope=APPROVAL_SCOPES[scope], reason=reason  # type: ignore[arg-type]
            )
            try:
                decided = await backends.approvals.Approve(request, timeout=backends.timeout, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                raise _failed(exc, "tools") from None
            return approval_body(decided)

        @server.tool(
            description=f"Deny a pending approval. Needs a person's approver credential in the '{APPROVER_HEADER}' header."
        )
        async def deny(
            approval_id: _ID, ctx: Context, reason: Annotated[str, Field(max_length=2000)] = ""
        ) -> dict[str, Any]:
            metadata = self._human(ctx.headers)
            backends = self._backends()
            request = approvals_pb2.DenyRequest(approval_id=approval_id, reason=reason)
            try:
                decided = await backends.approvals.Deny(request, timeout=backends.timeout, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                raise _failed(exc, "tools") from None
            return approval_body(decided)
