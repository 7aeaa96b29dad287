"""Approvals over real gRPC: the tools service runs a gated action only under an approval for its
exact hash, for its task, unexpired and (single-use) unused; decisions survive a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest
from ducklm.approvals.v1 import approvals_pb2
from ducklm.tools.v1 import tools_pb2

from services.common.protos import to_struct

from .support import StartTools, error_reply, write_policy

WRITE_A = {"path": "notes.txt", "content": "A"}
WRITE_B = {"path": "notes.txt", "content": "B"}


async def test_gated_call_without_approval_waits_on_the_pending_approval_it_created(
    start_tools: StartTools,
) -> None:
    client = await start_tools()
    reply = await client.execute("write_file", WRITE_A)
    assert reply.reason == "APPROVAL_REQUIRED" and reply.approval is not None
    assert reply.approval.state == approvals_pb2.APPROVAL_STATE_PENDING
    assert (reply.approval.task_id, reply.approval.tool_name) == ("task-1", "write_file")
    assert reply.approval.action_hash == reply.action_hash
    assert not (client.workspace / "notes.txt").exists()
    # Asking again (by either call) finds the same pending approval, never a second one.
    again = await client.execute("write_file", WRITE_A)
    assert again.approval is not None and again.approval.id == reply.approval.id
    assert (await client.request_approval("write_file", WRITE_A)).id == reply.approval.id
    # Once approved, the call runs under it: one approval, two ExecuteTool calls in all.
    await client.approve(reply.approval.id)
    done = await client.execute("write_file", WRITE_A, approval_id=reply.approval.id)
    assert done.ok and (client.workspace / "notes.txt").read_text() == "A"


async def test_concurrent_gated_calls_share_one_pending_approval(start_tools: StartTools) -> None:
    client = await start_tools()
    replies = await asyncio.gather(*(client.execute("write_file", WRITE_A) for _ in range(5)))
    ids = {reply.approval.id for reply in replies if reply.approval is not None}
    assert len(ids) == 1 and all(reply.reason == "APPROVAL_REQUIRED" for reply in replies)
    listed = await client.approvals.ListApprovals(approvals_pb2.ListApprovalsRequest(task_id="task-1"))
    assert [approval.id for approval in listed.approvals] == list(ids)


async def test_a_gated_call_without_a_task_is_refused(start_tools: StartTools) -> None:
    client = await start_tools()
    reply = await client.execute("write_file", WRITE_A, task_id="")
    assert reply.code == "INVALID_ARGUMENT" and "task_id" in reply.details, reply
    assert not (client.workspace / "notes.txt").exists()


async def test_approval_runs_exactly_its_action_once(start_tools: StartTools) -> None:
    client = await start_tools()
    approval = await client.request_approval("write_file", WRITE_A)
    assert approval.state == approvals_pb2.APPROVAL_STATE_PENDING
    await client.approve(approval.id, reason="looks fine")

    done = await client.execute("write_file", WRITE_A, approval_id=approval.id)
    assert done.ok, done
    assert done.action_hash == approval.action_hash
    assert (client.workspace / "notes.txt").read_text() == "A"

    again = await client.execute("write_file", WRITE_A, approval_id=approval.id)
    assert (again.code, again.reason) == ("FAILED_PRECONDITION", "APPROVAL_USED")
    state = await client.approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=approval.id))
    assert state.state == approvals_pb2.APPROVAL_STATE_USED


async def test_approval_for_arguments_a_does_not_run_arguments_b(start_tools: StartTools) -> None:
    client = await start_tools()
    approval = await client.request_approval("write_file", WRITE_A)
    await client.approve(approval.id)
    reply = await client.execute("write_file", WRITE_B, approval_id=approval.id)
    assert (reply.code, reply.reason) == ("FAILED_PRECONDITION", "APPROVAL_MISMATCH")
    assert not (client.workspace / "notes.txt").exists()
    # The mismatch did not use it up: the approved action still runs.
    assert (await client.execute("write_file", WRITE_A, approval_id=approval.id)).ok


async def test_one_byte_more_needs_a_new_approval(start_tools: StartTools) -> None:
    client = await start_tools()
    approval = await client.request_approval("run_command", {"argv": ["mkdir", "build"]})
    await client.approve(approval.id)
    reply = await client.execute("run_command", {"argv": ["mkdir", "build2"]}, approval_id=approval.id)
    assert reply.reason == "APPROVAL_MISMATCH"
    reply = await client.execute(
        "run_command", {"argv": ["mkdir", "build"], "cwd": "."}, approval_id=approval.id
    )
    assert reply.reason == "APPROVAL_MISMATCH"
    assert (await client.execute("run_command", {"argv": ["mkdir", "build"]}, approval_id=approval.id)).ok
    assert (client.workspace / "build").is_dir()


async def test_expired_approval_is_refused(start_tools: StartTools) -> None:
    now = [1_000_000.0]
    client = await start_tools(clock=lambda: now[0])
    approval = await client.request_approval("write_file", WRITE_A)
    approved = await client.approve(approval.id, ttl_seconds=1)
    assert approved.expire_time.seconds - approved.decide_time.seconds == 1
    now[0] += 1.0
    reply = await client.execute("write_file", WRITE_A, approval_id=approval.id)
    assert (reply.code, reply.reason) == ("FAILED_PRECONDITION", "APPROVAL_EXPIRED")
    state = await client.approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=approval.id))
    assert state.state == approvals_pb2.APPROVAL_STATE_EXPIRED
    assert not (client.workspace / "notes.txt").exists()


async def test_ttl_can_shorten_but_never_lengthen(start_tools: StartTools) -> None:
    client = await start_tools(approval_ttl_seconds=60)
    approval = await client.request_approval("write_file", WRITE_A)
    approved = await client.approve(approval.id, ttl_seconds=10**9)
    assert approved.expire_time.seconds - approved.decide_time.seconds <= 60


async def test_approvals_survive_a_restart(start_tools: StartTools, tmp_path: Path) -> None:
    first = await start_tools()
    used = await first.request_approval("write_file", WRITE_A)
    await first.approve(used.id, decided_by="alice", reason="needed for the report")  # decided_by ignored
    assert (await first.execute("write_file", WRITE_A, approval_id=used.id)).ok
    waiting = await first.request_approval("write_file", WRITE_B)
    await first.approve(waiting.id)
    denied = await first.request_approval("make_dir", {"path": "x"})
    await first.deny(denied.id, reason="no")
    await first.stop()

    second = await start_tools()
    record = await second.approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=used.id))
    assert (record.state, record.decided_by, record.reason) == (
        approvals_pb2.APPROVAL_STATE_USED,
        "human via test",
        "needed for the report",
    )
    assert record.decide_time.seconds > 0
    assert (await second.execute("write_file", WRITE_A, approval_id=used.id)).reason == "APPROVAL_USED"
    assert (
        await second.execute("make_dir", {"path": "x"}, approval_id=denied.id)
    ).reason == "APPROVAL_DENIED"
    assert (await second.execute("write_file", WRITE_B, approval_id=waiting.id)).ok
    assert (second.workspace / "notes.txt").read_text() == "B"


async def test_every_decision_is_in_the_audit_log(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start_tools()
    approval = await client.request_approval("write_file", WRITE_A)
    await client.approve(approval.id, reason="ok by me")
    await client.execute("write_file", WRITE_A, approval_id=approval.id)
    await client.stop()
    with sqlite3.connect(tmp_path / "tools.db") as db:
        rows = db.execute(
            "SELECT event, actor, reason, time FROM approval_events WHERE approval_id = ? ORDER BY seq",
            (approval.id,),
        ).fetchall()
    assert [(event, actor, reason) for event, actor, reason, _ in rows] == [
        ("requested", "task-1", ""),
        ("approved", "human via test", "ok by me"),
        ("used", "task-1", ""),
    ]
    assert all(time > 0 for *_, time in rows)


async def test_pending_denied_and_foreign_approvals_are_refused(start_tools: StartTools) -> None:
    client = await start_tools()
    pending = await client.request_approval("write_file", WRITE_A)
    assert (await client.execute("write_file", WRITE_A, approval_id=pending.id)).reason == "APPROVAL_PENDING"
    other_task = await client.execute("write_file", WRITE_A, task_id="task-2", approval_id=pending.id)
    assert other_task.reason == "APPROVAL_WRONG_TASK"
    missing = await client.execute("write_file", WRITE_A, approval_id="no-such-approval")
    assert missing.reason == "APPROVAL_NOT_FOUND"
    await client.deny(pending.id, reason="not now")
    denied = await client.execute("write_file", WRITE_A, approval_id=pending.id)
    assert (denied.code, denied.reason) == ("FAILED_PRECONDITION", "APPROVAL_DENIED")
    assert "not now" in denied.details


async def test_decisions_are_final_and_name_who_made_them(start_tools: StartTools) -> None:
    client = await start_tools()
    approval = await client.request_approval("write_file", WRITE_A)
    approved = await client.approve(approval.id, decided_by="")
    assert approved.decided_by == "human via test"
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await client.deny(approval.id)
    assert error_reply(twice.value).reason == "APPROVAL_ALREADY_DECIDED"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await client.approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id="nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_single_use_approval_runs_once_under_concurrency(start_tools: StartTools) -> None:
    client = await start_tools()
    approval = await client.request_approval("run_command", {"argv": ["touch", "once.txt"]})
    await client.approve(approval.id)
    replies = await asyncio.gather(
        *(
            client.execute("run_command", {"argv": ["touch", "once.txt"]}, approval_id=approval.id)
            for _ in range(8)
        )
    )
    assert sum(reply.ok for reply in replies) == 1
    assert {reply.reason for reply in replies if not reply.ok} == {"APPROVAL_USED"}


async def test_task_grant_covers_the_exact_action_for_its_task_only(start_tools: StartTools) -> None:
    client = await start_tools()
    argv = {"argv": ["touch", "stamp"]}
    approval = await client.request_approval("run_command", argv)
    await client.approve(approval.id, scope=approvals_pb2.APPROVAL_SCOPE_TASK)
    assert (await client.execute("run_command", argv, approval_id=approval.id)).ok
    assert (await client.execute("run_command", argv, approval_id=approval.id)).ok
    # Without an id the task's grant is found by the action hash.
    assert (await client.execute("run_command", argv)).ok
    assert (await client.execute("run_command", argv, task_id="task-2")).reason == "APPROVAL_REQUIRED"
    assert (await client.execute("run_command", argv, task_id="task-2", approval_id=approval.id)).reason == (
        "APPROVAL_WRONG_TASK"
    )
    assert (await client.execute("run_command", {"argv": ["touch", "other"]})).reason == "APPROVAL_REQUIRED"
    state = await client.approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=approval.id))
    assert state.state == approvals_pb2.APPROVAL_STATE_APPROVED


async def test_check_approval_does_not_use_it(start_tools: StartTools) -> None:
    client = await start_tools()
    approval = await client.request_approval("write_file", WRITE_A)
    request = approvals_pb2.CheckApprovalRequest(
        approval_id=approval.id, tool_name="write_file", arguments=to_struct(WRITE_A), task_id="task-1"
    )
    before = await client.approvals.CheckApproval(request)
    assert not before.allowed and "waiting" in before.reason
    await client.approve(approval.id)
    for _ in range(2):
        check = await client.approvals.CheckApproval(request)
        assert check.allowed and check.action_hash == approval.action_hash
    request.arguments.CopyFrom(to_struct(WRITE_B))
    assert not (await client.approvals.CheckApproval(request)).allowed
    assert (await client.execute("write_file", WRITE_A, approval_id=approval.id)).ok


async def test_request_records_the_exact_action(start_tools: StartTools) -> None:
    client = await start_tools()
    approval = await client.request_approval("read_file", {"path": "a.txt", "offset": 2})
    assert approval.canonical_action == (
        '{"arguments":{"offset":2,"path":"a.txt"},'
        f'"policy_version":"{approval.policy_version}","tool":"read_file",'
        f'"working_directory":"{client.workspace.resolve()}"}}'
    )
    assert len(approval.action_hash) == 64 and len(approval.policy_version) == 64
    again = await client.request_approval("read_file", {"offset": 2.0, "path": "a.txt"})
    assert again.id == approval.id  # still pending: the same request comes back


async def test_refused_actions_cannot_even_be_requested(start_tools: StartTools) -> None:
    client = await start_tools()
    refusals: list[tuple[str, dict[str, Any], str]] = [
        ("run_command", {"argv": ["sh", "-c", "id"]}, "COMMAND_NOT_ALLOWED"),
        ("run_command", {"argv": ["find", ".", "-delete"]}, "ARGUMENT_NOT_ALLOWED"),
        ("write_file", {"path": "../x", "content": ""}, "OUTSIDE_WORKSPACE"),
    ]
    for tool, arguments, reason in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.request_approval(tool, arguments)
        assert (refused.value.code(), error_reply(refused.value).reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            reason,
        )
    with pytest.raises(grpc.aio.AioRpcError) as no_task:
        await client.request_approval("write_file", WRITE_A, task_id="")
    assert no_task.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_approvals_filters_and_pages(start_tools: StartTools) -> None:
    client = await start_tools()
    ids = []
    for index in range(5):
        approval = await client.request_approval("make_dir", {"path": f"d{index}"}, task_id="t-list")
        ids.append(approval.id)
    await client.request_approval("make_dir", {"path": "other"}, task_id="t-other")
    await client.approve(ids[0])
    pages, token = [], ""
    while True:
        reply = await client.approvals.ListApprovals(
            approvals_pb2.ListApprovalsRequest(task_id="t-list", page_size=2, page_token=token)
        )
        pages.append([approval.id for approval in reply.approvals])
        token = reply.next_page_token
        if not token:
            break
    assert [approval_id for page in pages for approval_id in page] == ids
    approved = await client.approvals.ListApprovals(
        approvals_pb2.ListApprovalsRequest(state=approvals_pb2.APPROVAL_STATE_APPROVED)
    )
    assert [approval.id for approval in approved.approvals] == [ids[0]]


async def test_changing_the_policy_invalidates_old_approvals(start_tools: StartTools, tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml")
    first = await start_tools(policy_file=policy)
    approved = await first.request_approval("write_file", WRITE_A)
    await first.approve(approved.id)
    pending = await first.request_approval("write_file", WRITE_B)
    await first.stop()

    policy.write_text(policy.read_text() + "\n# one more line changes the version\n")
    second = await start_tools(policy_file=policy)
    reply = await second.execute("write_file", WRITE_A, approval_id=approved.id)
    assert (reply.code, reply.reason) == ("FAILED_PRECONDITION", "APPROVAL_POLICY_CHANGED")
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await second.approve(pending.id)
    assert error_reply(stale.value).reason == "APPROVAL_POLICY_CHANGED"


async def test_config_can_loosen_tighten_and_disable_tools(start_tools: StartTools, tmp_path: Path) -> None:
    policy = write_policy(
        tmp_path / "policy.yaml",
        tools={
            "write_file": {"requires_approval": False},
            "read_file": {"requires_approval": True},
            "make_dir": {"enabled": False},
            "run_command": {"requires_approval": True},
        },
    )
    client = await start_tools(policy_file=policy)
    assert (await client.execute("write_file", WRITE_A)).ok
    assert (await client.execute("read_file", {"path": "notes.txt"})).reason == "APPROVAL_REQUIRED"
    assert (await client.execute("run_command", {"argv": ["ls"]})).reason == "APPROVAL_REQUIRED"
    disabled = await client.execute("make_dir", {"path": "x"})
    assert (disabled.code, disabled.reason) == ("PERMISSION_DENIED", "TOOL_DISABLED")
    listed = await client.tools.ListTools(tools_pb2.ListToolsRequest())
    catalogue = {tool.name: tool.requires_approval for tool in listed.tools}
    assert "make_dir" not in catalogue
    assert catalogue["write_file"] is False and catalogue["read_file"] is True


async def test_watch_approvals_streams_each_request_decision_and_use(start_tools: StartTools) -> None:
    client = await start_tools()
    watch = client.approvals.WatchApprovals(approvals_pb2.WatchApprovalsRequest(task_id="task-1"))
    await watch.initial_metadata()  # subscribed from here on
    # Another task's approvals are not this watcher's.
    await client.execute("make_dir", {"path": "elsewhere"}, task_id="task-2")
    waiting = await client.execute("write_file", WRITE_A)
    assert waiting.approval is not None
    await client.approve(waiting.approval.id)
    assert (await client.execute("write_file", WRITE_A, approval_id=waiting.approval.id)).ok
    denied = await client.execute("write_file", WRITE_B)
    assert denied.approval is not None
    await client.deny(denied.approval.id, reason="no")
    seen = []
    for _ in range(5):
        change = await asyncio.wait_for(watch.read(), 10)
        assert isinstance(change, approvals_pb2.WatchApprovalsResponse), change
        seen.append(change.approval)
    watch.cancel()
    assert [(approval.id, approval.state) for approval in seen] == [
        (waiting.approval.id, approvals_pb2.APPROVAL_STATE_PENDING),
        (waiting.approval.id, approvals_pb2.APPROVAL_STATE_APPROVED),
        (waiting.approval.id, approvals_pb2.APPROVAL_STATE_USED),
        (denied.approval.id, approvals_pb2.APPROVAL_STATE_PENDING),
        (denied.approval.id, approvals_pb2.APPROVAL_STATE_DENIED),
    ]
    assert seen[-1].reason == "no"
