"""Adversarial cases of approval authority against the real tools service over gRPC.

Self-approval: nothing but the approver credential decides (no credential, the shared gRPC
token the runtime holds, near misses of the approver token, a forged `decided_by`, a forged
`via` label); the runtime's withdrawal never allows anything. Pattern grants: a TASK_PATTERN
grant covers its own program, subcommand and options with other workspace operands, and
nothing wider (other programs, subcommands, options, tasks, working directories, paths outside
the workspace, protected paths, links out).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from ducklm.approvals.v1 import approvals_pb2

from services.common.auth import APPROVER_TOKEN_KEY, APPROVER_VIA_KEY

from .support import APPROVER_TOKEN, SECRET, StartTools, ToolsClient, error_reply, write_policy

WRITE = {"path": "notes.txt", "content": "approved?"}

# Metadata a caller without the approver credential might try.
NOT_THE_APPROVER: dict[str, tuple[tuple[str, str], ...]] = {
    "no metadata": (),
    "the shared gRPC token as bearer": (("authorization", "Bearer grpc-shared-token-0123456789"),),
    "the approver token as bearer": (("authorization", f"Bearer {APPROVER_TOKEN}"),),
    "empty approver token": ((APPROVER_TOKEN_KEY, ""),),
    "a prefix of the token": ((APPROVER_TOKEN_KEY, APPROVER_TOKEN[:-1]),),
    "the token and more": ((APPROVER_TOKEN_KEY, APPROVER_TOKEN + "x"),),
    "the token with a space": ((APPROVER_TOKEN_KEY, APPROVER_TOKEN + " "),),
    "the token upper-cased": ((APPROVER_TOKEN_KEY, APPROVER_TOKEN.upper()),),
    "a bearer-prefixed token": ((APPROVER_TOKEN_KEY, f"Bearer {APPROVER_TOKEN}"),),
    "only a via label": ((APPROVER_VIA_KEY, "webchat"),),
    "the token under another key": (("ducklm-approver", APPROVER_TOKEN),),
}


async def _pending(client: ToolsClient) -> approvals_pb2.Approval:
    return await client.request_approval("write_file", WRITE)


async def _assert_still_pending(client: ToolsClient, approval_id: str) -> None:
    state = await client.approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=approval_id))
    assert state.state == approvals_pb2.APPROVAL_STATE_PENDING and state.decided_by == ""
    reply = await client.execute("write_file", WRITE, approval_id=approval_id)
    assert reply.reason == "APPROVAL_PENDING"
    assert not (client.workspace / "notes.txt").exists()


@pytest.mark.parametrize("case", sorted(NOT_THE_APPROVER))
@pytest.mark.parametrize("method", ["Approve", "Deny"])
async def test_only_the_approver_credential_decides(start_tools: StartTools, case: str, method: str) -> None:
    client = await start_tools()
    approval = await _pending(client)
    request: Any = (
        approvals_pb2.ApproveRequest(approval_id=approval.id, decided_by="alice", reason="self-approved")
        if method == "Approve"
        else approvals_pb2.DenyRequest(approval_id=approval.id, decided_by="alice")
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await getattr(client.approvals, method)(request, metadata=NOT_THE_APPROVER[case])
    reply = error_reply(refused.value)
    assert (reply.code, reply.reason) == ("PERMISSION_DENIED", "APPROVER_REQUIRED")
    assert APPROVER_TOKEN not in reply.details
    await _assert_still_pending(client, approval.id)


@pytest.mark.parametrize("scope", ["ONCE", "TASK", "TASK_PATTERN"])
async def test_a_service_without_an_approver_lets_nobody_decide(start_tools: StartTools, scope: str) -> None:
    client = await start_tools(approver_token="")
    approval = await client.request_approval("run_command", {"argv": ["touch", "a.txt"]})
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.approve(approval.id, scope=approvals_pb2.ApprovalScope.Value(f"APPROVAL_SCOPE_{scope}"))
    assert error_reply(refused.value).reason == "APPROVER_NOT_CONFIGURED"
    assert (await client.execute("run_command", {"argv": ["touch", "a.txt"]})).reason == "APPROVAL_REQUIRED"
    assert not (client.workspace / "a.txt").exists()


@pytest.mark.parametrize("claimed", ["alice", "admin", "human via webchat", "", "ducklm-runtime", APPROVER_TOKEN])
async def test_decided_by_comes_from_the_credential_never_the_request(
    start_tools: StartTools, tmp_path: Path, claimed: str
) -> None:
    client = await start_tools()
    approval = await _pending(client)
    approved = await client.approve(approval.id, decided_by=claimed)
    assert approved.decided_by == "human via test"
    await client.stop()
    with sqlite3.connect(tmp_path / "tools.db") as db:
        actors = [row[0] for row in db.execute("SELECT actor FROM approval_events WHERE approval_id = ?", (approval.id,))]
    assert actors == ["task-1", "human via test"]


@pytest.mark.parametrize("via", ["Webchat", "alice admin", "x" * 40, "-cli", "cli;forged", "human via webchat"])
async def test_a_forged_via_label_is_refused(start_tools: StartTools, via: str) -> None:
    client = await start_tools()
    approval = await _pending(client)
    metadata = ((APPROVER_TOKEN_KEY, APPROVER_TOKEN), (APPROVER_VIA_KEY, via))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.approvals.Approve(approvals_pb2.ApproveRequest(approval_id=approval.id), metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await _assert_still_pending(client, approval.id)


async def test_withdrawing_never_allows(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start_tools()
    approval = await _pending(client)
    withdrawn = await client.approvals.WithdrawApproval(
        approvals_pb2.WithdrawApprovalRequest(approval_id=approval.id, reason="task cancelled")
    )
    assert withdrawn.state == approvals_pb2.APPROVAL_STATE_DENIED
    assert withdrawn.decided_by == "requester (withdrawn)"
    assert (await client.execute("write_file", WRITE, approval_id=approval.id)).reason == "APPROVAL_DENIED"
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await client.approve(approval.id)
    assert error_reply(late.value).reason == "APPROVAL_ALREADY_DECIDED"
    approved = await client.approve((await client.request_approval("write_file", {**WRITE, "content": "B"})).id)
    with pytest.raises(grpc.aio.AioRpcError) as decided:
        await client.approvals.WithdrawApproval(approvals_pb2.WithdrawApprovalRequest(approval_id=approved.id))
    assert error_reply(decided.value).reason == "APPROVAL_ALREADY_DECIDED"
    await client.stop()
    with sqlite3.connect(tmp_path / "tools.db") as db:
        events = [row[0] for row in db.execute("SELECT event FROM approval_events WHERE approval_id = ?", (approval.id,))]
    assert events == ["requested", "withdrawn"]


# -- pattern grants ---------------------------------------------------------------------------


async def _pattern_grant(client: ToolsClient, argv: list[str], **arguments: Any) -> approvals_pb2.Approval:
    approval = await client.request_approval("run_command", {"argv": argv, **arguments})
    return await client.approve(approval.id, scope=approvals_pb2.APPROVAL_SCOPE_TASK_PATTERN)


async def test_a_pattern_grant_covers_other_workspace_operands(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start_tools()
    request = await client.request_approval("run_command", {"argv": ["touch", "a.txt"]})
    assert request.pattern == "run_command in ./: touch PATHS..."
    assert len(request.pattern_hash) == 64 and request.pattern_hash != request.action_hash
    granted = await client.approve(request.id, scope=approvals_pb2.APPROVAL_SCOPE_TASK_PATTERN)
    assert granted.scope == approvals_pb2.APPROVAL_SCOPE_TASK_PATTERN
    for argv in (["touch", "b.txt"], ["touch", "c.txt", "d.txt"], ["touch", "a.txt"]):
        reply = await client.execute("run_command", {"argv": argv})
        assert reply.ok, (argv, reply)
    with_id = await client.execute("run_command", {"argv": ["touch", "e.txt"]}, approval_id=granted.id)
    assert with_id.ok, with_id
    assert sorted(os.listdir(client.workspace)) == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]
    await client.stop()
    with sqlite3.connect(tmp_path / "tools.db") as db:
        uses = [row[0] for row in db.execute(
            "SELECT reason FROM approval_events WHERE approval_id = ? AND event = 'used'", (granted.id,)
        )]
    # Each use is audited with the exact action that ran.
    assert len(uses) == 4 and all(use.startswith("action ") and '"argv":["touch",' in use for use in uses)


async def test_a_pattern_grant_covers_one_git_subcommand(start_tools: StartTools) -> None:
    client = await start_tools()
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q"], cwd=client.workspace, check=True)
    (client.workspace / "a.txt").write_text("a")
    (client.workspace / "b.txt").write_text("b")
    request = await client.request_approval("run_command", {"argv": ["git", "add", "a.txt"]})
    assert request.pattern == "run_command in ./: git add PATHS..."
    await client.approve(request.id, scope=approvals_pb2.APPROVAL_SCOPE_TASK_PATTERN)
    assert (await client.execute("run_command", {"argv": ["git", "add", "b.txt"]})).ok
    for argv in (["git", "rm", "--cached", "b.txt"], ["git", "commit", "-m", "x"], ["git", "stash"]):
        assert (await client.execute("run_command", {"argv": argv})).reason == "APPROVAL_REQUIRED", argv


@pytest.mark.parametrize(
    ("granted", "attempt"),
    [
        (["touch", "a.txt"], ["mkdir", "a.txt"]),  # another program
        (["touch", "a.txt"], ["touch", "-d", "2000-01-01", "a.txt"]),  # another option
        (["touch", "-c", "a.txt"], ["touch", "a.txt"]),  # an option dropped
        (["touch", "a.txt"], ["touch", "--", "a.txt"]),  # another shape
        (["mkdir", "d"], ["mkdir", "-p", "d/e"]),
        (["cp", "a.txt", "b.txt"], ["cp", "-r", "a.txt", "b.txt"]),
        (["cp", "a.txt", "b.txt"], ["cp", "-t", "d", "a.txt"]),
        (["git", "add", "a.txt"], ["git", "rm", "a.txt"]),  # another subcommand
        (["git", "add", "a.txt"], ["git", "commit", "-m", "x"]),
        (["git", "add", "a.txt"], ["git", "add", "-f", "a.txt"]),
        (["rm", "a.txt"], ["rm", "-r", "d"]),
        (["mv", "a.txt", "b.txt"], ["mv", "-f", "a.txt", "b.txt"]),
    ],
)
async def test_a_pattern_grant_covers_nothing_of_another_shape(
    start_tools: StartTools, granted: list[str], attempt: list[str]
) -> None:
    client = await start_tools()
    await _pattern_grant(client, granted)
    reply = await client.execute("run_command", {"argv": attempt})
    # Either it needs its own approval, or the policy refuses it outright; it never runs.
    assert reply.code in ("APPROVAL_REQUIRED", "PERMISSION_DENIED"), reply


async def test_a_pattern_grant_stays_in_its_task_folder_and_arguments(start_tools: StartTools) -> None:
    client = await start_tools()
    (client.workspace / "sub").mkdir(parents=True)
    await _pattern_grant(client, ["touch", "a.txt"])
    attempts: list[tuple[dict[str, Any], str]] = [
        ({"argv": ["touch", "b.txt"]}, "task-2"),  # another task
        ({"argv": ["touch", "b.txt"], "cwd": "sub"}, "task-1"),  # another working directory
        ({"argv": ["touch", "b.txt"], "timeout_seconds": 5}, "task-1"),  # other arguments
    ]
    for arguments, task_id in attempts:
        reply = await client.execute("run_command", arguments, task_id=task_id)
        assert reply.reason == "APPROVAL_REQUIRED", (arguments, task_id, reply)
    assert not (client.workspace / "b.txt").exists() and not (client.workspace / "sub" / "b.txt").exists()


@pytest.mark.parametrize(
    "operand",
    ["../outside/new.txt", "/etc/ducklm-pattern", "{outside}/new.txt", "../../x", "sub/../../outside/new.txt"],
)
async def test_a_pattern_grant_never_writes_outside_the_workspace(
    start_tools: StartTools, outside: Path, operand: str
) -> None:
    client = await start_tools()
    (client.workspace / "sub").mkdir(parents=True)
    await _pattern_grant(client, ["touch", "a.txt"])
    reply = await client.execute("run_command", {"argv": ["touch", operand.format(outside=outside)]})
    assert reply.code == "PERMISSION_DENIED", reply
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert not Path("/etc/ducklm-pattern").exists()


async def test_a_pattern_grant_never_follows_a_link_out(start_tools: StartTools, outside: Path) -> None:
    client = await start_tools()
    await _pattern_grant(client, ["cp", "a.txt", "b.txt"])
    (client.workspace / "a.txt").write_text("overwrite")
    (client.workspace / "out").symlink_to(outside / "secret.txt")
    (client.workspace / "outdir").symlink_to(outside)
    for argv in (["cp", "a.txt", "out"], ["cp", "a.txt", "outdir/new.txt"], ["cp", "out", "copy.txt"]):
        reply = await client.execute("run_command", {"argv": argv})
        assert reply.code == "PERMISSION_DENIED", (argv, reply)
    assert (outside / "secret.txt").read_text() == SECRET
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert not (client.workspace / "copy.txt").exists()


@pytest.mark.parametrize(
    ("granted", "attempt"),
    [
        (["touch", "a.txt"], ["touch", ".git/hooks/pre-commit"]),
        (["touch", "a.txt"], ["touch", "sub/.git/config"]),
        (["cp", "a.txt", "b.txt"], ["cp", "a.txt", ".git/config"]),
        (["mkdir", "d"], ["mkdir", ".git/hooks/x"]),
        (["rm", "a.txt"], ["rm", ".git/HEAD"]),
        (["git", "add", "a.txt"], ["git", "add", ".git/config"]),
        (["cp", "a.txt", "b.txt"], ["cp", ".git/config", "leak.txt"]),  # reading one, too
    ],
)
async def test_a_pattern_grant_never_touches_a_protected_path(
    start_tools: StartTools, granted: list[str], attempt: list[str]
) -> None:
    client = await start_tools()
    git = client.workspace / ".git"
    (git / "hooks").mkdir(parents=True)
    (client.workspace / "sub" / ".git").mkdir(parents=True)
    (git / "config").write_text("[core]\n")
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (client.workspace / "a.txt").write_text("a")
    await _pattern_grant(client, granted)
    reply = await client.execute("run_command", {"argv": attempt})
    assert not reply.ok, reply
    assert (git / "config").read_text() == "[core]\n" and (git / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert not (git / "hooks" / "pre-commit").exists() and not (client.workspace / "leak.txt").exists()


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [("write_file", WRITE), ("make_dir", {"path": "d"})],
)
async def test_only_run_command_calls_have_a_pattern(
    start_tools: StartTools, tool: str, arguments: dict[str, Any]
) -> None:
    client = await start_tools()
    approval = await client.request_approval(tool, arguments)
    assert approval.pattern == "" and approval.pattern_hash == ""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.approve(approval.id, scope=approvals_pb2.APPROVAL_SCOPE_TASK_PATTERN)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await _assert_pending_state(client, approval.id)


async def _assert_pending_state(client: ToolsClient, approval_id: str) -> None:
    state = await client.approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=approval_id))
    assert state.state == approvals_pb2.APPROVAL_STATE_PENDING


async def test_a_pattern_grant_is_refused_by_a_changed_policy(start_tools: StartTools, tmp_path: Path) -> None:
    first = await start_tools()
    await _pattern_grant(first, ["touch", "a.txt"])
    await first.stop()
    second = await start_tools(policy_file=write_policy(tmp_path / "changed.yaml", {"true": {"read_only": True}}))
    assert (await second.execute("run_command", {"argv": ["touch", "b.txt"]})).reason == "APPROVAL_REQUIRED"

