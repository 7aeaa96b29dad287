"""Attempts to run MCP tools without the matching approval, against the real tools service and
two probe servers: every attempt is refused, and the servers' own logs show that not one call
reached them (target: 0 MCP calls executed without a matching approval)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ducklm.approvals.v1 import approvals_pb2

from .mcp_support import calls, probe_server, write_mcp_config
from .support import Reply, StartTools, ToolsClient

TASK = approvals_pb2.APPROVAL_SCOPE_TASK
PATTERN = approvals_pb2.APPROVAL_SCOPE_TASK_PATTERN


async def _approved(client: ToolsClient, tool: str, arguments: dict[str, Any], **fields: Any) -> str:
    approval = await client.request_approval(tool, arguments)
    await client.approve(approval.id, **fields)
    return str(approval.id)


async def test_no_mcp_call_runs_without_its_exact_approval(start_tools: StartTools, tmp_path: Path) -> None:
    probe_state, twin_state = tmp_path / "probe", tmp_path / "twin"
    servers = {
        # `shout` is free on probe only; twin runs the same program with nothing free.
        "probe": probe_server(probe_state, free_tools=["shout"]),
        "twin": probe_server(twin_state),
    }
    client = await start_tools(mcp_config_file=write_mcp_config(tmp_path / "mcp.yaml", servers))

    echo_a = await _approved(client, "probe.echo", {"text": "a"})
    echo_task = await _approved(client, "probe.echo", {"text": "t"}, scope=TASK)
    # A pattern grant covers any arguments of its tool in its task: it gets a task of its own.
    pattern_request = await client.request_approval("probe.echo", {"text": "p"}, task_id="task-p")
    await client.approve(pattern_request.id, scope=PATTERN)
    echo_pattern = str(pattern_request.id)
    pending = (await client.request_approval("probe.echo", {"text": "pending"})).id
    denied = (await client.request_approval("probe.echo", {"text": "denied"})).id
    await client.deny(denied, "no")
    built_in = await _approved(client, "write_file", {"path": "x.txt", "content": "x"})
    other_task = (await client.request_approval("probe.echo", {"text": "o"}, task_id="task-2")).id
    await client.approve(other_task)

    attempts: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
        ("no approval", "probe.echo", {"text": "a"}, {}),
        ("readOnlyHint does not spare one", "probe.echo", {"text": "z"}, {}),
        ("other arguments", "probe.echo", {"text": "b"}, {"approval_id": echo_a}),
        ("an extra argument", "probe.echo", {"text": "a", "more": 1}, {"approval_id": echo_a}),
        ("same tool on the twin server", "twin.echo", {"text": "a"}, {"approval_id": echo_a}),
        ("task grant, twin server", "twin.echo", {"text": "t"}, {}),
        ("task grant, other arguments", "probe.echo", {"text": "t2"}, {}),
        ("task grant, other task", "probe.echo", {"text": "t"}, {"task_id": "task-2"}),
        ("task grant's id, other arguments", "probe.echo", {"text": "t2"}, {"approval_id": echo_task}),
        ("pattern grant, other tool", "probe.big", {"chars": 1}, {"task_id": "task-p", "approval_id": echo_pattern}),
        ("pattern grant, twin server", "twin.echo", {"text": "p"}, {"task_id": "task-p", "approval_id": echo_pattern}),
        ("pattern grant, twin server, no id", "twin.echo", {"text": "p"}, {"task_id": "task-p"}),
        ("pattern grant, other task", "probe.echo", {"text": "p"}, {"task_id": "task-2"}),
        ("pattern grant, other task, its id", "probe.echo", {"text": "p"}, {"approval_id": echo_pattern}),
        ("free on another server only", "twin.shout", {"text": "s"}, {}),
        ("pending approval", "probe.echo", {"text": "pending"}, {"approval_id": pending}),
        ("denied approval", "probe.echo", {"text": "denied"}, {"approval_id": denied}),
        ("a built-in tool's approval", "probe.echo", {"text": "x"}, {"approval_id": built_in}),
        ("another task's approval", "probe.echo", {"text": "o"}, {"approval_id": other_task}),
        ("a look-alike name", "probe.ech\u043e", {"text": "a"}, {"approval_id": echo_a}),
        ("a padded name", "probe.echo ", {"text": "a"}, {"approval_id": echo_a}),
        ("no server", ".echo", {"text": "a"}, {"approval_id": echo_a}),
        ("no tool", "probe.", {"text": "a"}, {"approval_id": echo_a}),
        ("a doubled dot", "probe..echo", {"text": "a"}, {"approval_id": echo_a}),
        ("an unknown server", "ghost.echo", {"text": "a"}, {"approval_id": echo_a}),
    ]
    ran: list[tuple[str, Reply]] = []
    for what, tool, arguments, extra in attempts:
        reply = await client.execute(tool, arguments, **extra)
        if reply.ok:
            ran.append((what, reply))
    assert [what for what, _ in ran] == []
    assert calls(probe_state) == []
    assert calls(twin_state) == []
    print(f"MCP calls executed without a matching approval: {len(ran)} of {len(attempts)} attempts")

    # The approvals themselves still work for exactly what they cover.
    assert (await client.execute("probe.echo", {"text": "a"}, approval_id=echo_a)).ok
    assert (await client.execute("probe.echo", {"text": "t"})).ok
    assert (await client.execute("probe.echo", {"text": "anything"}, task_id="task-p")).ok
    assert calls(probe_state) == ["echo a", "echo t", "echo anything"]
    assert calls(twin_state) == []
