"""PostgreSQL benchmark: steps per second of one runtime replica with its tasks on PostgreSQL
against the SQLite default, at 100 concurrent tasks on an instant fake model (so the figure is
the runtime's and its database's, not a model's). Target: PostgreSQL >= 70% of SQLite.

Both runtimes are real processes (`python -m services.runtime`, standalone); PostgreSQL is a
private cluster started for the run (Debian's binaries, scripts/install_postgres.sh) with fsync
on and synchronous_commit off, the closest match of SQLite's WAL with synchronous=NORMAL: a
commit survives the runtime's crash, not the machine's.

Run with `make bench` (or `.venv/bin/python scripts/bench/bench_postgres.py [--tasks N --steps N]`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import grpc
import yaml
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from deploy.stack import LocalStack, StackPorts
from tests.scripted_model import ScriptedModel
from tests.storage.postgres_server import PostgresServer

TARGET_SHARE = 0.70


async def steps_per_second(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, tasks: int, steps: int) -> float:
    """Runs `tasks` tasks at once, each `steps` turns (one model step each); steps per second."""

    async def one_task() -> None:
        task_id = ""
        for step in range(steps):
            reply = await stub.Chat(runtime_pb2.ChatRequest(message=f"step {step}", task_id=task_id), timeout=300)
            task_id = reply.task.id
            if reply.reply != "ok":  # a failed turn is quick: it must not count as a step
                raise RuntimeError(f"turn {step} of task {task_id} did not complete: {reply.task.error}")

    await one_task()  # warm up: connections, caches, the model client
    started = time.perf_counter()
    await asyncio.gather(*(one_task() for _ in range(tasks)))
    return tasks * steps / (time.perf_counter() - started)


async def measure(data: Path, models: Path, tasks: int, steps: int, database_url: str = "") -> float:
    data.mkdir()
    env = {"DUCKLM_RUNTIME_MODELS_FILE": str(models), "DUCKLM_RUNTIME_STANDALONE": "true"}
    if database_url:
        env["DUCKLM_RUNTIME_DATABASE_URL"] = database_url
    stack = LocalStack(data_dir=data, ports=StackPorts.free(), services=("runtime",), with_gateway=False,
                       log_dir=data / "logs", extra_env=env)
    await stack.start(timeout=120)
    try:
        async with grpc.aio.insecure_channel(stack.address("runtime")) as channel:
            return await steps_per_second(runtime_pb2_grpc.RuntimeServiceStub(channel), tasks, steps)
    finally:
        await stack.stop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100, help="concurrent tasks")
    parser.add_argument("--steps", type=int, default=5, help="turns per task (one model step each)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each backend, alternating; the best counts")
    args = parser.parse_args()
    fake = ScriptedModel(fallback='{"action": "respond", "message": "ok"}')
    await fake.start()
    database = PostgresServer(durable=True)
    try:
        await asyncio.to_thread(database.start)
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            models = root / "models.yaml"
            models.write_text(yaml.safe_dump({"roles": {"chat": {"endpoint": fake.endpoint, "model": "fake"}}}))
            print(f"== one runtime replica, {args.tasks} concurrent tasks x {args.steps} steps, instant fake model,"
                  f" best of {args.rounds} alternating rounds ==")
            sqlite_runs, postgres_runs = [], []
            for round_number in range(args.rounds):
                # Alternating, so a busy moment of the machine does not favour one backend.
                sqlite_runs.append(await measure(root / f"sqlite{round_number}", models, args.tasks, args.steps))
                dsn = await asyncio.to_thread(database.create_database, "bench")
                postgres_runs.append(await measure(root / f"postgres{round_number}", models, args.tasks, args.steps, dsn))
                print(f"  round {round_number + 1}: SQLite {sqlite_runs[-1]:.1f}, PostgreSQL {postgres_runs[-1]:.1f} steps/s")
            sqlite, postgres = max(sqlite_runs), max(postgres_runs)
            print(f"SQLite (the default):   {sqlite:8.1f} steps/s")
            share = postgres / sqlite
            verdict = "reached" if share >= TARGET_SHARE else "NOT reached"
            print(f"PostgreSQL:             {postgres:8.1f} steps/s = {100 * share:.0f}% of SQLite "
                  f"(target >= {100 * TARGET_SHARE:.0f}%: {verdict})")
    finally:
        await asyncio.to_thread(database.stop)
        database.remove()
        await fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
