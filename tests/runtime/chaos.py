"""Chaos runs: multi-step tasks with approvals and commands while the runtime, tools and skills
services (and the model server) are SIGKILLed and restarted at random moments. Used by the
bounded test in this folder and by the longer soak under scripts/.

The report counts what must never happen (an event lost, a command run twice, a task left
mid-turn, an approval used twice, a status its log contradicts) and the tasks that failed.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from ducklm.runtime.v1 import runtime_pb2

from services.common.testing import free_port
from tests.runtime.fault_stack import (
    FaultStack,
    all_tasks,
    follow_plan,
    log_problems,
    runtime_call,
    status_of,
    task_events,
    type_of,
    wait_at_rest,
)
from tests.scripted_model import ScriptedModel

__all__ = ["ChaosReport", "StablePortModel", "run_chaos"]


class StablePortModel(ScriptedModel):
    """The scripted model, restartable on the port it first got (a model server restart)."""

    def _next_port(self) -> int:
        return self.port or free_port()


@dataclass
class ChaosReport:
    tasks: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    lost_events: int = 0
    duplicate_side_effects: int = 0
    stuck_tasks: int = 0
    approvals_reused: int = 0
    inconsistent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    completed: int = 0

    def lines(self) -> list[str]:
        share = 100 * len(self.failed) / self.tasks if self.tasks else 0.0
        return [
            f"tasks: {self.tasks} (completed {self.completed}, failed {len(self.failed)} = {share:.1f}%)",
            f"kills: {sum(self.kills.values())} {dict(self.kills)}",
            f"lost events: {self.lost_events} (target 0)",
            f"duplicate side effects: {self.duplicate_side_effects} (target 0)",
            f"stuck tasks: {self.stuck_tasks} (target 0)",
            f"approvals used twice: {self.approvals_reused} (target 0)",
            f"logs contradicting their status: {len(self.inconsistent)} (target 0)",
            *(f"  failed {task}: {error[:160]}" for task, error in list(self.failed.items())[:10]),
            *(f"  inconsistent: {problem[:200]}" for problem in self.inconsistent[:10]),
        ]


@dataclass
class _Run:
    stack: FaultStack
    model: StablePortModel
    rng: random.Random
    # The longest log seen for each task while the chaos ran: the final log must extend it.
    seen: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # tag -> task id
    done: bool = False

    async def submit(self, tag: str) -> None:
        """Sends the task's first message, again if the runtime was down and no task was made;
        then waits until the task rests (completed or failed)."""
        while tag not in self.ids:
            try:
                reply = await runtime_call(self.stack, "Chat", runtime_pb2.ChatRequest(message=f"tag={tag} go"), 120)
                self.ids[tag] = reply.task.id
            except grpc.aio.AioRpcError:
                await self._find(tag)
                await asyncio.sleep(0.2)
        while True:
            try:
                task = await runtime_call(self.stack, "GetTask", runtime_pb2.GetTaskRequest(task_id=self.ids[tag]), 5)
                if status_of(task) in ("completed", "failed", "cancelled"):
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)

    async def _find(self, tag: str) -> None:
        try:
            for task in await all_tasks(self.stack):
                if task.title.startswith(f"tag={tag} "):
                    self.ids[tag] = task.id
        except grpc.aio.AioRpcError:
            pass

    async def approver(self) -> None:
        await self.stack.keep_approving(lambda: not self.done)

    async def watcher(self) -> None:
        while not self.done:
            for task_id in list(self.ids.values()):
                try:
                    events = await task_events(self.stack, task_id)
                except grpc.aio.AioRpcError:
                    break
                log = [(e.seq, type_of(e)) for e in events]
                if len(log) > len(self.seen.get(task_id, [])):
                    self.seen[task_id] = log
            await asyncio.sleep(0.3)

    async def killer(self, kills: int, services: tuple[str, ...], gap: tuple[float, float],
                     down: tuple[float, float], report: ChaosReport) -> None:
        for _ in range(kills):
            await asyncio.sleep(self.rng.uniform(*gap))
            service = self.rng.choice(services)
            report.kills[service] += 1
            await self.bounce(service, self.rng.uniform(*down))

    async def bounce(self, service: str, down: float) -> None:
        stack = self.stack
        assert stack.stack is not None
        if service == "runtime":
            stack.kill_runtime()
            await asyncio.sleep(down)
            await stack.start_runtime()
        elif service == "model":
            await self.model.stop()
            await asyncio.sleep(down)
            await self.model.start()
        else:
            stack.stack.kill(service)
            await asyncio.sleep(down)
            await stack.stack.restart(service)


async def run_chaos(
    root: Path, *, tasks: int, kills: int, concurrency: int = 3, seed: int = 13,
    services: tuple[str, ...] = ("runtime", "tools", "skills"), gap: tuple[float, float] = (0.5, 2.5),
    down: tuple[float, float] = (0.1, 1.5), command_seconds: float = 0.2, settle_seconds: float = 90.0,
) -> ChaosReport:
    """Runs `tasks` tasks (`concurrency` at a time) through `kills` random kills; the report."""
    model = StablePortModel()
    await model.start()
    follow_plan(model, command_seconds)
    stack = FaultStack(root, model)
    report = ChaosReport(tasks=tasks)
    run = _Run(stack, model, random.Random(seed))
    try:
        await stack.start()
        assert await stack.start_runtime()
        helpers = [asyncio.create_task(run.approver()), asyncio.create_task(run.watcher())]
        gate = asyncio.Semaphore(concurrency)

        async def one(tag: str) -> None:
            async with gate:
                await run.submit(tag)

        work = asyncio.gather(*(one(f"t{i}") for i in range(tasks)))
        await run.killer(kills, services, gap, down, report)
        try:
            await asyncio.wait_for(work, settle_seconds)
        except TimeoutError:
            pass  # counted below as stuck
        final = {t.id: t for t in await wait_at_rest(stack, timeout=10)}
        run.done = True
        await asyncio.gather(*helpers)
        await _judge(run, final, report)
    finally:
        await stack.stop()
        await model.stop()
    return report


async def _judge(run: _Run, final: dict[str, runtime_pb2.Task], report: ChaosReport) -> None:
    # Tasks made, counting a message sent again because the runtime died before it answered.
    report.tasks = len(final)
    runs = run.stack.runs()
    tasks_per_tag = Counter(task.title.split()[0].removeprefix("tag=") for task in final.values())
    for tag, count in runs.items():
        # A command runs once per task at most; a tag sent twice (its first reply was lost
        # with the runtime) may rightly have two tasks.
        report.duplicate_side_effects += max(0, count - max(tasks_per_tag.get(tag, 1), 1))
    for task in final.values():
        events = await task_events(run.stack, task.id)
        log = [(e.seq, type_of(e)) for e in events]
        earlier = run.seen.get(task.id, [])
        report.lost_events += sum(1 for entry in earlier if entry not in log)
        status = status_of(task)
        if status not in ("completed", "failed", "cancelled"):
            report.stuck_tasks += 1
        if status == "completed":
            report.completed += 1
        if status == "failed":
            report.failed[task.id] = task.error
        successes = Counter(str(e.data["call_id"]) for e in events if type_of(e) == "tool_result" and e.data["ok"]
                            and e.data["tool"] == "run_command")
        report.approvals_reused += max(0, sum(successes.values()) - 1)
        problems = log_problems(task, events)
        report.approvals_reused += sum(1 for p in problems if "decided" in p)
        report.inconsistent += [f"{task.id}: {p}" for p in problems]
