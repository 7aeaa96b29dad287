"""A stack for fault tests: tools and skills as real processes (`LocalStack`), the runtime as a
real process that can be SIGKILLed (optionally at its Nth commit, `commit_killer`), and the
scripted model answering by a fixed plan read from the prompt, so a turn that is repeated after
a crash asks for the same next step. Also the checks every fault test makes of a task's log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from deploy.stack import LocalStack, StackPorts
from services.common.auth import approver_metadata
from services.common.config import repo_root
from services.common.testing import wait_for_health
from tests.scripted_model import ScriptedModel

# Allowlisted, not read-only (so it needs an approval): appends one line to `runs.log` in the
# workspace, then sleeps, so the log shows how often each task's command really ran. A shell
# script: the command sandbox shows the system's programs, not this checkout's Python.
SLOW_APPEND = """#!/bin/sh
echo "$1" >> runs.log
sleep "$2"
"""
REST = ("completed", "failed", "cancelled", "waiting_approval")


def plan_step(messages: list[dict[str, Any]], sleep: float) -> str:
    """The next directive of a task's plan: list the workspace (unless the first message says
    "quick"), run `slow-append` with the task's tag (approval needed), then finish."""
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    first = users[0] if users else ""
    tag = first.split("tag=")[-1].split()[0] if "tag=" in first else "untagged"
    done = sum(1 for text in users if text.startswith(("Result of ", "list_dir failed", "run_command failed")))
    plan: list[dict[str, Any]] = [] if "quick" in first else [
        {"action": "call_tool", "tool": "list_dir", "arguments": {"path": "."}}
    ]
    plan.append({"action": "call_tool", "tool": "run_command", "arguments": {"argv": ["slow-append", tag, str(sleep)]}})
    if done >= len(plan):
        return json.dumps({"action": "finish", "message": f"done {tag}"})
    return json.dumps(plan[done])


class _Plan(deque[str]):
    """Stands in for the scripted model's queue: never empty, answers from the last request."""

    def __init__(self, model: ScriptedModel, sleep: float) -> None:
        super().__init__()
        self._model, self._sleep = model, sleep

    def __bool__(self) -> bool:
        return True

    def popleft(self) -> str:
        return plan_step(self._model.requests[-1].get("messages", []), self._sleep)


def follow_plan(model: ScriptedModel, sleep: float = 0.0) -> None:
    model.outputs = _Plan(model, sleep)


@dataclass
class FaultStack:
    root: Path
    model: ScriptedModel
    ports: StackPorts = field(default_factory=StackPorts.free)
    stack: LocalStack | None = None
    runtime: subprocess.Popen[bytes] | None = None
    runtime_starts: int = 0

    @property
    def workspace(self) -> Path:
        return self.root / "data" / "workspace"

    def address(self, service: str) -> str:
        return f"127.0.0.1:{getattr(self.ports, service)}"

    async def start(self) -> None:
        bin_dir = self.root / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        program = bin_dir / "slow-append"
        program.write_text(SLOW_APPEND)
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
        policy = yaml.safe_load((repo_root() / "config" / "tools.yaml").read_text())
        policy["search_path"] = f"{bin_dir}:/usr/bin:/bin"
        policy["commands"]["slow-append"] = {}
        (self.root / "tools.yaml").write_text(yaml.safe_dump(policy))
        (self.root / "models.yaml").write_text(yaml.safe_dump({"roles": {"chat": {
            "endpoint": self.model.endpoint, "model": "scripted", "timeout_seconds": 10, "max_call_seconds": 20,
        }}}))
        self.stack = LocalStack(
            data_dir=self.root / "data", ports=self.ports, log_dir=self.root / "logs",
            services=("tools", "skills"), with_gateway=False,
            extra_env={
                "DUCKLM_RUNTIME_MODELS_FILE": str(self.root / "models.yaml"),
                "DUCKLM_RUNTIME_APPROVAL_RETRY_SECONDS": "0.05",
                "DUCKLM_RUNTIME_RECALL_TOP_K": "0",
                "DUCKLM_RUNTIME_PEER_WAIT_SECONDS": "20",
                "DUCKLM_TOOLS_POLICY_FILE": str(self.root / "tools.yaml"),
            },
        )
        await self.stack.start(timeout=60)

    async def start_runtime(self, *, kill_at: int = 0, database: str = "runtime.db") -> bool:
        """Starts the runtime process; True once it serves, False if it died first."""
        assert self.stack is not None
        env = self.stack.environment(Path(os.devnull))
        env["DUCKLM_RUNTIME_DATABASE"] = str(self.root / "data" / database)
        argv = [sys.executable, "-m", "tests.runtime.commit_killer", str(kill_at), str(self.root / "commits")]
        self.runtime = _spawn(argv, env, self.root / "logs" / "runtime.log")
        self.runtime_starts += 1
        for _ in range(600):
            if self.runtime.poll() is not None:
                return False
            try:
                await wait_for_health(self.address("runtime"), timeout=0.5)
                return True
            except TimeoutError:
                continue
        raise TimeoutError("the runtime did not start")

    def runtime_alive(self) -> bool:
        return self.runtime is not None and self.runtime.poll() is None

    def kill_runtime(self) -> None:
        if self.runtime is not None and self.runtime.poll() is None:
            os.killpg(self.runtime.pid, signal.SIGKILL)
        if self.runtime is not None:
            self.runtime.wait()
        self.runtime = None

    async def stop(self) -> None:
        self.kill_runtime()
        if self.stack is not None:
            await self.stack.stop()

    def commits(self) -> int:
        path = self.root / "commits"
        return int(path.read_text() or 0) if path.exists() else 0

    def runs(self) -> Counter[str]:
        log = self.workspace / "runs.log"
        return Counter(log.read_text().split()) if log.exists() else Counter()

    async def approve_pending(self, task_ids: set[str] | None = None) -> int:
        """Approves every pending approval (of `task_ids`, if given); how many it approved."""
        approved = 0
        async with grpc.aio.insecure_channel(self.address("tools")) as channel:
            stub = approvals_pb2_grpc.ApprovalsServiceStub(channel)
            listed = await stub.ListApprovals(approvals_pb2.ListApprovalsRequest(page_size=500), timeout=5)
            for approval in listed.approvals:
                if approval.state != approvals_pb2.APPROVAL_STATE_PENDING:
                    continue
                if task_ids is not None and approval.task_id not in task_ids:
                    continue
                assert self.stack is not None
                try:
                    await stub.Approve(
                        approvals_pb2.ApproveRequest(approval_id=approval.id), timeout=5,
                        metadata=approver_metadata(self.stack.approver_token, "test"),
                    )
                    approved += 1
                except grpc.aio.AioRpcError as exc:
                    if exc.code() is grpc.StatusCode.PERMISSION_DENIED:
                        raise
                    # decided or expired meanwhile
        return approved

    async def keep_approving(self, running: Callable[[], bool]) -> None:
        """Approves what is pending, every 0.1 s, while `running()` (a chaos run's approver)."""
        while running():
            try:
                await self.approve_pending()
            except grpc.aio.AioRpcError:
                pass  # the tools service is being killed or restarted: the next round approves
            await asyncio.sleep(0.1)


@asynccontextmanager
async def running_stack(root: Path, model: ScriptedModel, sleep: float = 0.0) -> AsyncIterator[FaultStack]:
    """A started FaultStack whose model follows each request's plan (`sleep`: seconds per reply)."""
    follow_plan(model, sleep=sleep)
    stack = FaultStack(root, model)
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Starts a process in its own session, output appended to `log_path` (quick: not awaited)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, env=env, cwd=repo_root(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


async def runtime_call(stack: FaultStack, method: str, request: Any, timeout: float = 10.0) -> Any:
    async with grpc.aio.insecure_channel(stack.address("runtime")) as channel:
        return await getattr(runtime_pb2_grpc.RuntimeServiceStub(channel), method)(request, timeout=timeout)


async def all_tasks(stack: FaultStack) -> list[runtime_pb2.Task]:
    reply = await runtime_call(stack, "ListTasks", runtime_pb2.ListTasksRequest(page_size=1000))
    return list(reply.tasks)


async def task_events(stack: FaultStack, task_id: str) -> list[common_pb2.Event]:
    events: list[common_pb2.Event] = []
    token = ""
    while True:
        reply = await runtime_call(
            stack, "ListTaskEvents", runtime_pb2.ListTaskEventsRequest(task_id=task_id, page_size=1000, page_token=token)
        )
        events.extend(reply.events)
        token = reply.next_page_token
        if not token:
            return events


def type_of(event: common_pb2.Event) -> str:
    return common_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_").lower()


def status_of(task: runtime_pb2.Task) -> str:
    return common_pb2.TaskStatus.Name(task.status).removeprefix("TASK_STATUS_").lower()


def log_problems(task: runtime_pb2.Task, events: list[common_pb2.Event]) -> list[str]:
    """What is wrong with a task's log and status: lost or reordered events, a status the log
    contradicts, a call settled twice or an approval used twice. Empty when all is well."""
    problems = []
    if [e.seq for e in events] != list(range(1, len(events) + 1)):
        problems.append(f"seqs are not 1..n: {[e.seq for e in events]}")
    changes = [e for e in events if type_of(e) == "status_changed"]
    if changes and changes[-1].data["to"] != status_of(task):
        problems.append(f"status {status_of(task)} but the log's last change is to {changes[-1].data['to']}")
    results = Counter(str(e.data["call_id"]) for e in events if type_of(e) == "tool_result")
    problems += [f"call {call} settled {n} times" for call, n in results.items() if n > 1]
    decided = Counter(str(e.data["approval_id"]) for e in events if type_of(e) == "approval_decided")
    problems += [f"approval {approval} decided {n} times" for approval, n in decided.items() if n > 1]
    requested = {str(e.data["approval_id"]) for e in events if type_of(e) == "approval_requested"}
    if status_of(task) == "waiting_approval" and task.pending_approval_id not in requested:
        problems.append("waiting for an approval the log never requested")
    return problems


async def wait_at_rest(stack: FaultStack, timeout: float = 60.0, approve: bool = True) -> list[runtime_pb2.Task]:
    """Approves what is pending until every task has completed or failed (or `timeout`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        tasks = await all_tasks(stack)
        if all(status_of(t) in ("completed", "failed", "cancelled") for t in tasks):
            return tasks
        if loop.time() > deadline:
            return tasks
        if approve and any(status_of(t) == "waiting_approval" for t in tasks):
            await stack.approve_pending()
        await asyncio.sleep(0.1)
