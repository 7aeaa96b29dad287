"""DuckLM's own MCP server (/mcp on the gateway), driven by the official SDK's client over
streamable HTTP against the real stack: start and continue a task, read its events, list its
pending approval, and approve it — which only a request carrying the approver credential can."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from services.gateway.mcp_server import APPROVER_HEADER
from tests.gateway.conftest import GatewayStack, SecuredGateway
from tests.gateway.streams import wait_for_status


@asynccontextmanager
async def mcp_client(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(30.0, read=300.0))
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http), cache=None) as client:
        yield client


def body(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return dict(result.structured_content)
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return dict(json.loads(first.text))


def error_text(result: types.CallToolResult) -> str:
    assert result.is_error
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


async def test_tools_are_listed(gateway_stack: GatewayStack) -> None:
    async with mcp_client(gateway_stack.url) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert names == {"start_chat", "continue_chat", "read_events", "list_pending_approvals", "approve", "deny"}


async def test_start_continue_and_read_a_task(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script(
        [{"action": "respond", "message": "Quack one."}, {"action": "respond", "message": "Quack two."}]
    )
    async with mcp_client(gateway_stack.url) as client:
        started = body(await client.call_tool("start_chat", {"message": "Say quack"}))
        task_id = started["task_id"]
        await wait_for_status(api, task_id, "completed")
        continued = body(await client.call_tool("continue_chat", {"task_id": task_id, "message": "Again"}))
        assert continued["task_id"] == task_id
        await wait_for_status(api, task_id, "completed")
        read = body(await client.call_tool("read_events", {"task_id": task_id}))
    assert read["task"]["status"] == "completed"
    assert read["task"]["last_reply"] == "Quack two."
    types_seen = [event["type"] for event in read["events"]]
    assert types_seen[0] == "task_created"
    assert types_seen.count("user_message") == 2


async def test_unknown_task_is_a_tool_error(gateway_stack: GatewayStack) -> None:
    async with mcp_client(gateway_stack.url) as client:
        result = await client.call_tool("read_events", {"task_id": "no-such-task"})
    assert "NOT_FOUND" in error_text(result)


async def test_approval_needs_the_human_credential(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    write = {"action": "call_tool", "tool": "write_file", "arguments": {"path": "mcp.txt", "content": "quack"}}
    gateway_stack.model.script([write, {"action": "respond", "message": "Written."}])
    async with mcp_client(gateway_stack.url) as client:
        task_id = body(await client.call_tool("start_chat", {"message": "Write mcp.txt"}))["task_id"]
        task = await wait_for_status(api, task_id, "waiting_approval")
        pending = body(await client.call_tool("list_pending_approvals", {"task_id": task_id}))["approvals"]
        assert [approval["id"] for approval in pending] == [task["pending_approval_id"]]
        approval_id = pending[0]["id"]
        # The gateway token alone (what a host's model acts with) decides nothing.
        refused = await client.call_tool("approve", {"approval_id": approval_id})
        assert APPROVER_HEADER in error_text(refused)
        assert (await api.get(f"/v1/approvals/{approval_id}")).json()["state"] == "pending"
    wrong = {APPROVER_HEADER: "not-the-approver-token"}
    async with mcp_client(gateway_stack.url, wrong) as client:
        assert (await client.call_tool("approve", {"approval_id": approval_id})).is_error
    human = {APPROVER_HEADER: gateway_stack.stack.approver_token}
    async with mcp_client(gateway_stack.url, human) as client:
        decided = body(await client.call_tool("approve", {"approval_id": approval_id, "reason": "ok"}))
    assert decided["state"] == "approved"
    assert decided["decided_by"] == "human via mcp"
    done = await wait_for_status(api, task_id, "completed")
    assert done["last_reply"] == "Written."
    assert (gateway_stack.workspace / "mcp.txt").read_text() == "quack"


async def test_mcp_endpoint_is_behind_the_gateway_token(secured_gateway: SecuredGateway) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{secured_gateway.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    async with mcp_client(secured_gateway.url, {"Authorization": f"Bearer {secured_gateway.token}"}) as client:
        assert "start_chat" in {tool.name for tool in (await client.list_tools()).tools}
