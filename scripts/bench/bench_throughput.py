"""Throughput benchmark: the runtime against an instant fake model (scripts/bench/instant_model.py,
its own process), at 1, 10, 100 and 500 concurrent tasks.

Each task sends a few messages in turn over the runtime's Chat RPC; each message is one model
step. Per step it prints the runtime's own time (the Chat call's time minus the model call's
latency as the runtime recorded it), p50 and p99, and steps per second over the whole run.
Targets: >= 500 steps/s at 100 tasks; at 500 tasks no more than 20% fewer steps/s than at 100;
DuckLM's own time per step <= 3 ms p50 at 1 task.

`--py-spy N` also samples the runtime process with py-spy during the N-task run and prints where
its time goes (per thread, the functions most often on top, DuckLM's share); `--py-spy-out FILE`
keeps the raw samples (flamegraph.pl / speedscope read them).

    .venv/bin/python scripts/bench/bench_throughput.py [--tasks 1,10,100,500] [--py-spy 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import yaml
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from deploy.stack import LocalStack, StackPorts
from scripts.bench.spy_summary import SpySummary, record_profile
from services.common.testing import free_port

HERE = Path(__file__).parent
TARGET_STEPS_PER_S = 500.0
TARGET_DROP = 0.20
TARGET_OWN_P50_MS = 3.0


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Round:
    tasks: int
    steps: int
    wall_s: float
    own_ms: list[float]
    cpu_ms_per_step: dict[str, float]

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s

    def percentile(self, share: float) -> float:
        ordered = sorted(self.own_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def one_task(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, steps: int) -> tuple[str, list[float]]:
    """Sends `steps` messages to one task; returns its id and each Chat call's time (ms)."""
    task_id, times = "", []
    for step in range(steps):
        started = time.perf_counter()
        reply = await stub.Chat(runtime_pb2.ChatRequest(message=f"step {step}", task_id=task_id), timeout=600)
        times.append((time.perf_counter() - started) * 1000)
        task_id = reply.task.id
    return task_id, times


async def model_latencies(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, task_id: str) -> list[float]:
    latencies, token = [], ""
    while True:
        page = await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task_id, page_size=1000, page_token=token))
        # One step's call per message; a long task's compaction calls are not steps.
        latencies += [e.data.fields["latency_ms"].number_value for e in page.events
                      if e.type == common_pb2.EVENT_TYPE_MODEL_CALL and "purpose" not in e.data.fields]
        token = page.next_page_token
        if not token:
            return latencies


async def run_round(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, tasks: int, steps: int,
                    pids: dict[str, int]) -> Round:
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    results = await asyncio.gather(*(one_task(stub, steps) for _ in range(tasks)))
    wall = time.perf_counter() - started
    cpu = {name: (cpu_seconds(pid) - cpu_before[name]) * 1000 / (tasks * steps) for name, pid in pids.items()}
    own: list[float] = []
    for task_id, times in results:
        latencies = await model_latencies(stub, task_id)
        own.extend(total - model for total, model in zip(times, latencies, strict=True))
    return Round(tasks=tasks, steps=tasks * steps, wall_s=wall, own_ms=own, cpu_ms_per_step=cpu)


def report(rounds: Sequence[Round]) -> None:
    names = list(rounds[0].cpu_ms_per_step) if rounds else []
    cpu_heads = "".join(f" {'cpu ' + name:>14}" for name in names)
    print(f"{'tasks':>6} {'steps':>6} {'wall s':>7} {'steps/s':>8} {'own p50 ms':>10} {'own p99 ms':>10}{cpu_heads}")
    for r in rounds:
        cpu = "".join(f" {r.cpu_ms_per_step[name]:>11.2f} ms" for name in names)
        print(f"{r.tasks:>6} {r.steps:>6} {r.wall_s:>7.2f} {r.steps_per_s:>8.1f} {r.percentile(0.5):>10.2f} "
              f"{r.percentile(0.99):>10.2f}{cpu}")
    by_tasks = {r.tasks: r for r in rounds}
    if 1 in by_tasks:
        p50 = by_tasks[1].percentile(0.5)
        print(f"DuckLM's own time per step at 1 task: p50 {p50:.2f} ms (target <= {TARGET_OWN_P50_MS:.0f} ms)"
              f"{'' if p50 <= TARGET_OWN_P50_MS else '  NOT REACHED'}")
    if 100 in by_tasks:
        rate = by_tasks[100].steps_per_s
        print(f"steps/s at 100 tasks: {rate:.1f} (target >= {TARGET_STEPS_PER_S:.0f})"
              f"{'' if rate >= TARGET_STEPS_PER_S else '  NOT REACHED'}")
        if 500 in by_tasks:
            drop = 1 - by_tasks[500].steps_per_s / rate
            print(f"steps/s at 500 tasks vs 100: {100 * -drop:+.1f}% (target no more than {100 * TARGET_DROP:.0f}% lower)"
                  f"{'' if drop <= TARGET_DROP else '  NOT REACHED'}")
    print("(own time = the Chat call's time minus the model call's latency the runtime recorded; at 10 tasks "
          "and more it includes queueing for the cores; cpu = each process's CPU time per step, which other "
          "load on the machine does not inflate)")


async def bench(port: int, model_pid: int, levels: Sequence[int], steps: int, spy_at: int | None, spy_out: Path | None) -> None:
    """Runs each round against a runtime using the instant model on `port`."""
    with tempfile.TemporaryDirectory() as data:
        models = Path(data) / "models.yaml"
        endpoint = f"http://127.0.0.1:{port}/v1"
        models.write_text(yaml.safe_dump({"roles": {"chat": {"endpoint": endpoint, "model": "instant"}}}))
        stack = LocalStack(
            data_dir=Path(data), ports=StackPorts.free(), services=("runtime",), with_gateway=False,
            extra_env={"DUCKLM_RUNTIME_MODELS_FILE": str(models), "DUCKLM_RUNTIME_STANDALONE": "true",
                       "DUCKLM_RUNTIME_DECISION": "single", "DUCKLM_LOG_LEVEL": "warning"},
        )
        await stack.start(timeout=60)
        try:
            options = [("grpc.max_concurrent_streams", 1000)]
            async with grpc.aio.insecure_channel(stack.address("runtime"), options=options) as channel:
                stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
                pids = {"runtime": stack.processes["runtime"].pid, "model": model_pid, "client": os.getpid()}
                await run_round(stub, 100, 2, pids)  # warm up: imports, caches, the connection pools, gRPC streams
                rounds = []
                for tasks in levels:
                    # At least 40 steps per round, so a percentile at 1 task means something.
                    steps_per_task = max(steps, 40 // tasks)
                    if tasks == spy_at:
                        spy = record_profile(stack.processes["runtime"].pid, spy_out)
                        rounds.append(await run_round(stub, tasks, steps_per_task, pids))
                        summary: SpySummary | None = spy.finish()
                    else:
                        rounds.append(await run_round(stub, tasks, steps_per_task, pids))
                        summary = None
                    if summary is not None:
                        print(f"\n-- py-spy of the runtime at {tasks} tasks --")
                        summary.print()
                print()
                report(rounds)
        finally:
            await stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="1,10,100,500", help="concurrency levels, comma-separated")
    parser.add_argument("--steps", type=int, default=6, help="messages (model steps) per task")
    parser.add_argument("--py-spy", type=int, metavar="TASKS", help="profile the runtime at this concurrency")
    parser.add_argument("--py-spy-out", type=Path, help="keep py-spy's raw (collapsed) samples here")
    args = parser.parse_args()
    levels = [int(level) for level in args.tasks.split(",")]
    print("== runtime throughput against an instant fake model ==")
    port = free_port()
    fake = subprocess.Popen([sys.executable, str(HERE / "instant_model.py"), str(port)], stdout=subprocess.PIPE)
    assert fake.stdout is not None
    fake.stdout.readline()  # "listening": the port is bound
    try:
        asyncio.run(bench(port, fake.pid, levels, args.steps, args.py_spy, args.py_spy_out))
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
