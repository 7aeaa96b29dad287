"""The tool catalogue over gRPC: names, descriptions, JSON Schemas, risk levels and approval
needs, paging, and health of both services hosted by the tools process."""

from __future__ import annotations

import json

import grpc
import pytest
from ducklm.tools.v1 import tools_pb2
from jsonschema import Draft202012Validator

from services.common.testing import wait_for_health

from .support import StartTools

EXPECTED = {
    "read_file": (tools_pb2.RISK_LEVEL_READ_ONLY, False),
    "write_file": (tools_pb2.RISK_LEVEL_WRITE, True),
    "list_dir": (tools_pb2.RISK_LEVEL_READ_ONLY, False),
    "stat_path": (tools_pb2.RISK_LEVEL_READ_ONLY, False),
    "make_dir": (tools_pb2.RISK_LEVEL_WRITE, True),
    "find_files": (tools_pb2.RISK_LEVEL_READ_ONLY, False),
    "run_command": (tools_pb2.RISK_LEVEL_DANGEROUS, True),
}


async def test_catalogue_lists_every_tool_with_a_valid_schema(start_tools: StartTools) -> None:
    client = await start_tools()
    reply = await client.tools.ListTools(tools_pb2.ListToolsRequest())
    assert {tool.name: (tool.risk_level, tool.requires_approval) for tool in reply.tools} == EXPECTED
    assert reply.next_page_token == ""
    for tool in reply.tools:
        schema = json.loads(tool.arguments_schema)
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert len(tool.description) > 20
    run = json.loads(next(tool for tool in reply.tools if tool.name == "run_command").arguments_schema)
    assert run["required"] == ["argv"] and run["properties"]["argv"]["items"] == {"type": "string"}


async def test_catalogue_pages(start_tools: StartTools) -> None:
    client = await start_tools()
    names, token = [], ""
    while True:
        reply = await client.tools.ListTools(tools_pb2.ListToolsRequest(page_size=3, page_token=token))
        assert len(reply.tools) <= 3
        names += [tool.name for tool in reply.tools]
        token = reply.next_page_token
        if not token:
            break
    assert names == list(EXPECTED)
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await client.tools.ListTools(tools_pb2.ListToolsRequest(page_token="not-a-token"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_both_services_report_serving(start_tools: StartTools) -> None:
    client = await start_tools()
    for service in ("", "ducklm.tools.v1.ToolsService", "ducklm.approvals.v1.ApprovalsService"):
        await wait_for_health(client.server.address, service=service, timeout=5)


async def test_results_carry_the_action_hash(start_tools: StartTools) -> None:
    client = await start_tools()
    first = await client.execute("list_dir", {})
    second = await client.execute("list_dir", {"path": "."})
    assert first.ok and len(first.action_hash) == 64
    assert first.action_hash != second.action_hash  # different arguments, different action
    assert (await client.execute("list_dir", {})).action_hash == first.action_hash
