"""SIGKILL the runtime process mid-task, restart it, and the task completes with no tool
executed twice and no event lost. Real processes (as `make run` starts them), a scripted model."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import yaml
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from deploy.stack import LocalStack, StackPorts
from services.common.auth import approver_metadata
from services.common.config import repo_root
from tests.scripted_model import ScriptedModel

# A program the test allowlists: it appends one line to `runs.log` in its working directory,
# then sleeps, so a kill can land while it runs and the log shows how often it ran.
# A shell script: commands run in a sandbox that holds the system's programs, not this venv.
SLOW_APPEND = """#!/bin/sh
echo ran >> runs.log
exec sleep "$1"
"""


@pytest.fixture
async def crash_stack(tmp_path: Path, scripted_model: ScriptedModel) -> AsyncIterator[LocalStack]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "slow-append"
    program.write_text(SLOW_APPEND)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    policy = yaml.safe_load((repo_root() / "config" / "tools.yaml").read_text())
    policy["search_path"] = f"{bin_dir}:/usr/bin:/bin"
    policy["commands"]["slow-append"] = {}  # allowlisted, not read-only: needs an approval
    (tmp_path / "tools.yaml").write_text(yaml.safe_dump(policy))
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"roles": {"chat": {"endpoint": scripted_model.endpoint, "model": "scripted"}}}))
    stack = LocalStack(
        data_dir=tmp_path / "data", ports=StackPorts.free(), log_dir=tmp_path / "logs",
        services=("runtime", "tools", "skills"), with_gateway=False,
        extra_env={
            "DUCKLM_RUNTIME_MODELS_FILE": str(models),
            "DUCKLM_RUNTIME_APPROVAL_RETRY_SECONDS": "0.05",
            "DUCKLM_TOOLS_POLICY_FILE": str(tmp_path / "tools.yaml"),
        },
    )
    await stack.start(timeout=60)
    try:
        yield stack
    finally:
        await stack.stop()


async def events_of(stack: LocalStack, task_id: str) -> list[common_pb2.Event]:
    async with grpc.aio.insecure_channel(stack.address("runtime")) as channel:
        stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
        return list((await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task_id, page_size=1000))).events)


async def wait_until(stack: LocalStack, task_id: str, predicate: object, timeout: float = 30.0) -> list[common_pb2.Event]:
    for _ in range(int(timeout / 0.05)):
        events = await events_of(stack, task_id)
        if predicate(events):  # type: ignore[operator]
            return events
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached; events: " + ", ".join(common_pb2.EventType.Name(e.type) for e in events))


def completed(events: list[common_pb2.Event]) -> bool:
    return any(e.type == common_pb2.EVENT_TYPE_STATUS_CHANGED and e.data["to"] == "completed" for e in events)


def assert_log_intact(before: list[common_pb2.Event], after: list[common_pb2.Event]) -> None:
    assert [e.seq for e in after] == list(range(1, len(after) + 1))
    assert [(e.seq, e.type) for e in after[: len(before)]] == [(e.seq, e.type) for e in before]


async def start_gated_call(stack: LocalStack, scripted_model: ScriptedModel, seconds: float) -> str:
    scripted_model.script([
        {"action": "call_tool", "tool": "run_command", "arguments": {"argv": ["slow-append", str(seconds)]}},
        {"action": "finish", "message": "finished"},
    ])
    async with grpc.aio.insecure_channel(stack.address("runtime")) as channel:
        reply = await runtime_pb2_grpc.RuntimeServiceStub(channel).Chat(runtime_pb2.ChatRequest(message="run it"))
    assert reply.task.status == common_pb2.TASK_STATUS_WAITING_APPROVAL
    return reply.task.id


async def approve(stack: LocalStack, task_id: str) -> None:
    async with grpc.aio.insecure_channel(stack.address("tools")) as channel:
        approvals = approvals_pb2_grpc.ApprovalsServiceStub(channel)
        pending = await approvals.ListApprovals(approvals_pb2.ListApprovalsRequest(task_id=task_id))
        await approvals.Approve(
            approvals_pb2.ApproveRequest(approval_id=pending.approvals[0].id),
            metadata=approver_metadata(stack.approver_token, "test"),
        )


async def test_sigkill_while_waiting_for_approval(crash_stack: LocalStack, scripted_model: ScriptedModel) -> None:
    task_id = await start_gated_call(crash_stack, scripted_model, 0)
    before = await events_of(crash_stack, task_id)
    crash_stack.kill("runtime")
    await approve(crash_stack, task_id)  # decided while the runtime is down
    await crash_stack.restart("runtime")
    after = await wait_until(crash_stack, task_id, completed)
    assert_log_intact(before, after)
    results = [e for e in after if e.type == common_pb2.EVENT_TYPE_TOOL_RESULT]
    assert len(results) == 1 and results[0].data["ok"] is True
    runs = (crash_stack.data_dir / "workspace" / "runs.log").read_text()
    assert runs == "ran\n"


async def test_sigkill_while_a_tool_runs(crash_stack: LocalStack, scripted_model: ScriptedModel) -> None:
    task_id = await start_gated_call(crash_stack, scripted_model, 3)
    await approve(crash_stack, task_id)
    workspace_log = crash_stack.data_dir / "workspace" / "runs.log"
    for _ in range(200):  # wait until the program is running
        if workspace_log.exists():
            break
        await asyncio.sleep(0.05)
    before = await events_of(crash_stack, task_id)
    crash_stack.kill("runtime")
    await crash_stack.restart("runtime")
    after = await wait_until(crash_stack, task_id, completed)
    assert_log_intact(before, after)
    results = [e for e in after if e.type == common_pb2.EVENT_TYPE_TOOL_RESULT]
    assert len(results) == 1
    assert results[0].data["ok"] is False and results[0].data["interrupted"] is True
    # No wait for the cut-off program: a re-run would have had to finish (its first act is the
    # append) before the task could complete, so the log already shows every run there was.
    assert workspace_log.read_text() == "ran\n"
    assert os.path.exists(workspace_log)
