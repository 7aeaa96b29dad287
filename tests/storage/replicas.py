"""Runtime replicas on one PostgreSQL database, for the replica-kill test: three runtime
processes (real `python -m services.runtime`, each on its own port) share one database and one
tools and skills service (`FaultStack`), while tasks with an approved command run through the
scripted model's plan and replicas are SIGKILLed and started again.

The report counts what must never happen: an event lost, a command run twice, a task left
mid-turn, an approval used twice, a status its log contradicts, and a stored event that a
client streaming from the replica never killed did not see.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.config import repo_root
from services.common.testing import free_port, wait_for_health
from tests.runtime.chaos import StablePortModel
from tests.runtime.fault_stack import FaultStack, follow_plan, log_problems, status_of, type_of

__all__ = ["ReplicaReport", "run_replica_kills"]

FINAL = ("completed", "failed", "cancelled")


@dataclass
class ReplicaReport:
    tasks: int = 0
    kills: int = 0
    completed: int = 0
    lost_events: int = 0
    duplicate_side_effects: int = 0
    stuck_tasks: int = 0
    approvals_reused: int = 0
    unseen_by_stream: int = 0
    taken_over: int = 0
    inconsistent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"tasks: {self.tasks} (completed {self.completed}, failed {len(self.failed)})",
            f"replica kills: {self.kills}; tasks resumed by another replica: {self.taken_over}",
            f"lost events: {self.lost_events} (target 0)",
            f"duplicate side effects: {self.duplicate_side_effects} (target 0)",
            f"stuck tasks: {self.stuck_tasks} (target 0)",
            f"approvals used twice: {self.approvals_reused} (target 0)",
            f"stored events a surviving replica's stream missed: {self.unseen_by_stream} (target 0)",
            f"logs contradicting their status: {len(self.inconsistent)} (target 0)",
            *(f"  failed {task}: {error[:160]}" for task, error in list(self.failed.items())[:10]),
            *(f"  inconsistent: {problem[:200]}" for problem in self.inconsistent[:10]),
        ]


class Replicas:
    """Runtime processes on one database; replica 0 is never killed (the streaming client's)."""

    def __init__(self, stack: FaultStack, dsn: str, count: int, lease_seconds: float) -> None:
        self.stack = stack
        self.dsn = dsn
        self.lease_seconds = lease_seconds
        self.ports = [free_port() for _ in range(count)]
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.starts = 0
        self._next = 0

    def address(self, index: int) -> str:
        return f"127.0.0.1:{self.ports[index]}"

    async def start(self, index: int) -> None:
        assert self.stack.stack is not None
        self.starts += 1
        env = self.stack.stack.environment(Path(os.devnull))
        env.update({
            "DUCKLM_RUNTIME_ADDRESS": self.address(index),
            "DUCKLM_RUNTIME_DATABASE_URL": self.dsn,
            "DUCKLM_RUNTIME_LEASE_SECONDS": str(self.lease_seconds),
            "DUCKLM_RUNTIME_REPLICA_ID": f"replica{index}-start{self.starts}",
            "DUCKLM_RUNTIME_METRICS_ADDRESS": "",
        })
        self.processes[index] = _spawn(env, self.stack.root / "logs" / f"runtime-{index}.log")
        await wait_for_health(self.address(index), timeout=60)

    def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.processes[index] = None

    def stop_all(self) -> None:
        for index in range(len(self.processes)):
            self.kill(index)

    def live(self) -> list[int]:
        return [i for i, process in enumerate(self.processes) if process is not None and process.poll() is None]

    async def call(self, method: str, request: Any, timeout: float = 10.0) -> Any:
        """Calls the next live replica (round robin), trying the others while one is down."""
        last: grpc.aio.AioRpcError | None = None
        for _ in range(len(self.ports)):
            self._next = (self._next + 1) % len(self.ports)
            if self._next not in self.live():
                continue
            async with grpc.aio.insecure_channel(self.address(self._next)) as channel:
                stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
                try:
                    return await getattr(stub, method)(request, timeout=timeout)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                        raise
                    last = exc
        raise last or RuntimeError("no runtime replica is up")


def _spawn(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Starts a runtime in its own session, output appended to `log_path` (quick: not awaited)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "services.runtime"], env=env, cwd=repo_root(), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


@dataclass
class _Run:
    replicas: Replicas
    rng: random.Random
    ids: dict[str, str] = field(default_factory=dict)  # tag -> task id
    seen: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    streamed: dict[str, set[int]] = field(default_factory=dict)
    streams: list[asyncio.Task[None]] = field(default_factory=list)
    done: bool = False

    async def submit(self, tag: str) -> None:
        while tag not in self.ids:
            try:
                reply = await self.replicas.call("Chat", runtime_pb2.ChatRequest(message=f"tag={tag} go"), 120)
                self.ids[tag] = reply.task.id
            except (grpc.aio.AioRpcError, RuntimeError):
                await self._find(tag)
                await asyncio.sleep(0.2)
        self.streams.append(asyncio.create_task(self.stream(self.ids[tag])))
        while True:
            try:
                task = await self.replicas.call("GetTask", runtime_pb2.GetTaskRequest(task_id=self.ids[tag]), 5)
                if status_of(task) in FINAL:
                    return
            except (grpc.aio.AioRpcError, RuntimeError):
                pass
            await asyncio.sleep(0.2)

    async def _find(self, tag: str) -> None:
        try:
            reply = await self.replicas.call("ListTasks", runtime_pb2.ListTasksRequest(page_size=1000))
        except (grpc.aio.AioRpcError, RuntimeError):
            return
        for task in reply.tasks:
            if task.title.startswith(f"tag={tag} "):
                self.ids[tag] = task.id

    async def stream(self, task_id: str) -> None:
        """Follows the task's events from replica 0 (never killed) until the run ends."""
        seen = self.streamed.setdefault(task_id, set())
        async with grpc.aio.insecure_channel(self.replicas.address(0)) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            request = runtime_pb2.StreamTaskEventsRequest(task_id=task_id, follow=True)
            try:
                async for event in stub.StreamTaskEvents(request):
                    seen.add(event.seq)
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.CANCELLED:
                    raise

    async def approver(self) -> None:
        await self.replicas.stack.keep_approving(lambda: not self.done)

    async def watcher(self) -> None:
        while not self.done:
            for task_id in list(self.ids.values()):
                try:
                    log = [(e.seq, type_of(e)) for e in await self._events(task_id)]
                except (grpc.aio.AioRpcError, RuntimeError):
                    break
                if len(log) > len(self.seen.get(task_id, [])):
                    self.seen[task_id] = log
            await asyncio.sleep(0.3)

    async def _events(self, task_id: str) -> list[Any]:
        reply = await self.replicas.call(
            "ListTaskEvents", runtime_pb2.ListTaskEventsRequest(task_id=task_id, page_size=1000)
        )
        return list(reply.events)

    def taken_over(self) -> bool:
        """Whether the watcher has seen a task resumed by another replica yet."""
        return any(kind == "task_resumed" for log in self.seen.values() for _, kind in log)

    async def killer(self, kills: int, gap: tuple[float, float], down: tuple[float, float], *, more: int,
                     finished: Callable[[], bool]) -> int:
        """Kills `kills` times, then up to `more` times again while no task has been taken over
        and tasks are still running (on a loaded machine every planned kill may miss the tasks in
        flight). Returns how many kills there were."""
        done = 0
        while done < kills or (done < kills + more and not self.taken_over() and not finished()):
            done += 1
            await asyncio.sleep(self.rng.uniform(*gap))
            victim = self.rng.choice([i for i in self.replicas.live() if i != 0])
            self.replicas.kill(victim)
            await asyncio.sleep(self.rng.uniform(*down))
            await self.replicas.start(victim)
        return done


async def run_replica_kills(
    root: Path, dsn: str, *, tasks: int, kills: int, replicas: int = 3, concurrency: int = 10, seed: int = 7,
    lease_seconds: float = 2.0, gap: tuple[float, float] = (1.0, 3.0), down: tuple[float, float] = (0.2, 1.0),
    command_seconds: float = 1.0, settle_seconds: float = 180.0,
) -> ReplicaReport:
    model = StablePortModel()
    await model.start()
    follow_plan(model, command_seconds)
    stack = FaultStack(root, model)
    group = Replicas(stack, dsn, replicas, lease_seconds)
    run = _Run(group, random.Random(seed))
    report = ReplicaReport(kills=kills)
    try:
        await stack.start()
        await asyncio.gather(*(group.start(i) for i in range(replicas)))
        helpers = [asyncio.create_task(run.approver()), asyncio.create_task(run.watcher())]
        gate = asyncio.Semaphore(concurrency)

        async def one(tag: str) -> None:
            async with gate:
                await run.submit(tag)

        work = asyncio.gather(*(one(f"t{i}") for i in range(tasks)))
        report.kills = await run.killer(kills, gap, down, more=3 * kills, finished=work.done)
        try:
            await asyncio.wait_for(work, settle_seconds)
        except TimeoutError:
            pass  # counted below as stuck
        run.done = True
        await asyncio.gather(*helpers)
        await _judge(run, report)
    finally:
        for stream in run.streams:
            stream.cancel()
        await asyncio.gather(*run.streams, return_exceptions=True)
        group.stop_all()
        await stack.stop()
        await model.stop()
    return report


async def _judge(run: _Run, report: ReplicaReport) -> None:
    reply = await run.replicas.call("ListTasks", runtime_pb2.ListTasksRequest(page_size=1000))
    final = list(reply.tasks)
    report.tasks = len(final)
    runs = run.replicas.stack.runs()
    tasks_per_tag = Counter(task.title.split()[0].removeprefix("tag=") for task in final)
    for tag, count in runs.items():
        # A tag sent twice (its first reply was lost with a replica) may rightly have two tasks.
        report.duplicate_side_effects += max(0, count - max(tasks_per_tag.get(tag, 1), 1))
    # The stream of the last events may still be on its way from replica 0.
    await asyncio.sleep(1.0)
    for task in final:
        events = await run._events(task.id)
        log = [(e.seq, type_of(e)) for e in events]
        report.lost_events += sum(1 for entry in run.seen.get(task.id, []) if entry not in log)
        status = status_of(task)
        report.stuck_tasks += status not in FINAL
        report.completed += status == "completed"
        if status == "failed":
            report.failed[task.id] = task.error
        report.taken_over += any(type_of(e) == "task_resumed" for e in events)
        if task.id in run.streamed:
            report.unseen_by_stream += len({e.seq for e in events} - run.streamed[task.id])
        successes = Counter(str(e.data["call_id"]) for e in events if type_of(e) == "tool_result" and e.data["ok"]
                            and e.data["tool"] == "run_command")
        report.approvals_reused += max(0, sum(successes.values()) - 1)
        problems = log_problems(task, events)
        report.approvals_reused += sum(1 for p in problems if "decided" in p)
        report.inconsistent += [f"{task.id}: {p}" for p in problems]
