"""Approvals of MCP tool calls over real gRPC: an approval covers exactly one server (as
configured), one tool with the input schema it listed, and one set of arguments; a schema change
or a changed command line needs a new approval; task and pattern grants work as for built-in
tools. Every refusal is checked against the probe server's own log: the call never reached it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ducklm.approvals.v1 import approvals_pb2

from .mcp_support import calls, probe_server, schema_of, wait_for_listing, write_mcp_config
from .support import StartTools, ToolsClient

TASK = approvals_pb2.APPROVAL_SCOPE_TASK
PATTERN = approvals_pb2.APPROVAL_SCOPE_TASK_PATTERN


async def start_probe(start_tools: StartTools, tmp_path: Path, state: Path, **extra: Any) -> ToolsClient:
    server = probe_server(state, free_tools=["crash"], **extra)
    config = write_mcp_config(tmp_path / "mcp.yaml", {"probe": server})
    return await start_tools(mcp_config_file=config, mcp_restart_backoff_seconds=0.01)


async def test_approval_shows_server_annotations_and_identity(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start_probe(start_tools, tmp_path, tmp_path / "state")
    approval = await client.request_approval("probe.echo", {"text": "hi"})
    assert approval.tool_name == "probe.echo"
    assert "mcp_probe_server.py" in approval.working_directory
    assert '"readOnlyHint":true' in approval.canonical_action
    assert '"input_schema_sha256"' in approval.canonical_action
    assert approval.pattern.startswith("probe.echo with any arguments")


async def test_approval_covers_only_its_arguments_and_task(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_probe(start_tools, tmp_path, state)
    approval = await client.request_approval("probe.echo", {"text": "a"})
    await client.approve(approval.id)
    other_args = await client.execute("probe.echo", {"text": "b"}, approval_id=approval.id)
    assert (other_args.code, other_args.reason) == ("FAILED_PRECONDITION", "APPROVAL_MISMATCH")
    other_task = await client.execute("probe.echo", {"text": "a"}, task_id="task-2", approval_id=approval.id)
    assert (other_task.code, other_task.reason) == ("FAILED_PRECONDITION", "APPROVAL_WRONG_TASK")
    other_tool = await client.execute("probe.shout", {"text": "a"}, approval_id=approval.id)
    assert (other_tool.code, other_tool.reason) == ("FAILED_PRECONDITION", "APPROVAL_MISMATCH")
    assert calls(state) == []
    assert (await client.execute("probe.echo", {"text": "a"}, approval_id=approval.id)).ok
    used = await client.execute("probe.echo", {"text": "a"}, approval_id=approval.id)
    assert (used.code, used.reason) == ("FAILED_PRECONDITION", "APPROVAL_USED")
    assert calls(state) == ["echo a"]


async def test_denied_call_never_runs(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_probe(start_tools, tmp_path, state)
    approval = await client.request_approval("probe.echo", {"text": "a"})
    await client.deny(approval.id, "not now")
    reply = await client.execute("probe.echo", {"text": "a"}, approval_id=approval.id)
    assert (reply.code, reply.reason) == ("FAILED_PRECONDITION", "APPROVAL_DENIED")
    assert calls(state) == []


async def test_task_grant_covers_the_exact_call_for_the_task(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_probe(start_tools, tmp_path, state)
    approval = await client.request_approval("probe.echo", {"text": "a"})
    await client.approve(approval.id, scope=TASK)
    assert (await client.execute("probe.echo", {"text": "a"})).ok
    assert (await client.execute("probe.echo", {"text": "a"})).ok
    other = await client.execute("probe.echo", {"text": "b"})
    assert other.reason == "APPROVAL_REQUIRED"
    assert calls(state) == ["echo a", "echo a"]


async def test_pattern_grant_covers_any_arguments_of_that_tool_only(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_probe(start_tools, tmp_path, state)
    approval = await client.request_approval("probe.echo", {"text": "a"})
    await client.approve(approval.id, scope=PATTERN)
    assert (await client.execute("probe.echo", {"text": "b"})).ok
    assert (await client.execute("probe.echo", {"text": "c"}, approval_id=approval.id)).ok
    assert (await client.execute("probe.shout", {"text": "d"})).reason == "APPROVAL_REQUIRED"
    assert (await client.execute("probe.echo", {"text": "e"}, task_id="task-2")).reason == "APPROVAL_REQUIRED"
    assert calls(state) == ["echo b", "echo c"]


async def test_schema_change_needs_a_new_approval(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "variant").write_text("a")
    client = await start_probe(start_tools, tmp_path, state)
    approval = await client.request_approval("probe.lookup", {"key": "k"})
    await client.approve(approval.id, scope=TASK)
    assert (await client.execute("probe.lookup", {"key": "k"})).ok

    # The server is replaced by one whose `lookup` takes more (as an upgrade would).
    (state / "variant").write_text("b")
    crashed = await client.execute("probe.crash", {})
    assert crashed.reason == "MCP_SERVER_CRASHED"
    tools = await wait_for_listing(
        client, lambda tools: "delete" in schema_of(tools["probe.lookup"]).get("properties", {})
    )
    assert "delete" in schema_of(tools["probe.lookup"])["properties"]

    by_grant = await client.execute("probe.lookup", {"key": "k"})
    assert (by_grant.code, by_grant.reason) == ("APPROVAL_REQUIRED", "APPROVAL_REQUIRED")
    by_id = await client.execute("probe.lookup", {"key": "k"}, approval_id=approval.id)
    assert (by_id.code, by_id.reason) == ("FAILED_PRECONDITION", "APPROVAL_MISMATCH")
    fresh = await client.request_approval("probe.lookup", {"key": "k"})
    assert fresh.action_hash != approval.action_hash
    assert [call for call in calls(state) if call.startswith("lookup")] == ["lookup k"]


async def test_changed_command_line_needs_a_new_approval(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_probe(start_tools, tmp_path, state)
    approval = await client.request_approval("probe.echo", {"text": "a"})
    await client.approve(approval.id)
    await client.stop()
    # Same name, same tool, same schema: another program behind it.
    server = probe_server(state)
    server["args"].append("--another-flavour")
    config = write_mcp_config(tmp_path / "mcp.yaml", {"probe": server})
    changed = await start_tools(mcp_config_file=config)
    reply = await changed.execute("probe.echo", {"text": "a"}, approval_id=approval.id)
    assert (reply.code, reply.reason) == ("FAILED_PRECONDITION", "APPROVAL_MISMATCH")
    assert calls(state) == []


async def test_concurrent_uses_of_one_approval_run_once(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_probe(start_tools, tmp_path, state)
    approval = await client.request_approval("probe.echo", {"text": "a"})
    await client.approve(approval.id)
    replies = await asyncio.gather(
        *(client.execute("probe.echo", {"text": "a"}, approval_id=approval.id) for _ in range(5))
    )
    assert sum(reply.ok for reply in replies) == 1
    assert calls(state) == ["echo a"]


async def test_schema_changed_while_running_needs_a_new_approval(start_tools: StartTools, tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = probe_server(state, free_tools=["evolve"])
    client = await start_tools(mcp_config_file=write_mcp_config(tmp_path / "mcp.yaml", {"probe": server}))
    approval = await client.request_approval("probe.lookup", {"key": "k"})
    await client.approve(approval.id, scope=TASK)
    assert (await client.execute("probe.lookup", {"key": "k"})).ok

    # The server changes the tool without restarting, and says so: DuckLM lists it again.
    assert (await client.execute("probe.evolve", {})).ok
    tools = await wait_for_listing(
        client, lambda tools: "delete" in schema_of(tools["probe.lookup"]).get("properties", {})
    )
    assert "delete" in schema_of(tools["probe.lookup"])["properties"]
    refused = await client.execute("probe.lookup", {"key": "k"})
    assert (refused.code, refused.reason) == ("APPROVAL_REQUIRED", "APPROVAL_REQUIRED")
    assert [call for call in calls(state) if call.startswith("lookup")] == ["lookup k"]
