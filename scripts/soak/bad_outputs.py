"""Bad model output at volume: a model server (its own process) answers every call with a
generated bad output — lone surrogates, malformed escapes, JSON nested thousands deep, truncated
JSON, multi-megabyte output in one line or many, wrong types, control characters — to a runtime
served in this process. Prints, next to their targets, the internal errors (tasks failed as
`internal`, or RPCs answered INTERNAL) and the longest stall of the runtime's event loop (the
time every other task and RPC had to wait):

    .venv/bin/python scripts/soak/bad_outputs.py --outputs 1000

Targets: 0 internal errors; no stall of other tasks longer than 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "gen" / "python")]

import grpc
import yaml
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

MEGABYTE = 1_000_000


def bad_output(index: int) -> tuple[str, int]:
    """The index-th bad output and the characters per streamed chunk (0: all in one chunk)."""
    rng = random.Random(index)
    kind = index % 12
    if kind == 0:
        return '{"action": "respond", "message": "lone \\ud800 and \\udfff here"}', 8
    if kind == 1:
        return '{"action": "respond", "message": "bad escape \\uZZ9 \\u12"}', rng.choice([1, 3, 8])
    if kind == 2:
        return "[" * rng.randint(1_000, 50_000), rng.choice([0, 64])
    if kind == 3:
        return '{"a": ' * rng.randint(500, 5_000) + "1" + "}" * 10, 64
    if kind == 4:
        return '{"action": "respond", "message": "' + "x" * rng.randint(1, 4) * MEGABYTE, 0
    if kind == 5:
        return '{"action": "respond", "message": "' + "y" * 3 * MEGABYTE + '"}', 65_536
    if kind == 6:
        return '{"action": "respond", "message": "' + "\\n\\t\\\\" * 300_000 + '"}', 4096
    if kind == 7:
        return '{"action": "resp', 4
    if kind == 8:
        return '{"action": 5, "message": ["not", "a", "string"]}', 8
    if kind == 9:
        return "".join(chr(rng.randint(0, 0x2FFFF)) for _ in range(rng.randint(1, 2000))), 16
    if kind == 10:
        return '{"action": "respond", "message": "' + "1" * 100_000 + '", "n": ' + "9" * 50_000 + "}", 1024
    return '{"action": "respond", "message": "\\u0000\\u001f\\ud83d\\ude00 ok"}', 2


def serve(port: int) -> None:
    """The bad model server: answers the n-th call with bad_output(n)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    calls = 0

    async def completions(request: Request) -> Response:
        nonlocal calls
        await request.body()
        text, size = bad_output(calls)
        calls += 1

        async def stream() -> AsyncIterator[str]:
            step = size or len(text) or 1
            for start in range(0, len(text), step):
                delta = {"choices": [{"index": 0, "delta": {"content": text[start : start + step]}}]}
                yield "data: " + json.dumps(delta) + "\n\n"
            yield "data: " + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


def start_model_server(port: int) -> subprocess.Popen[bytes]:
    """The bad model server in its own process, quiet: it logs every connection the runtime
    closes on purpose. (Quick to start; not awaited.)"""
    return subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


async def watch_loop(stop: asyncio.Event, lags: list[tuple[float, float, float]]) -> None:
    """How late a 5 ms timer fires on the runtime's loop (a stall every task there suffers): the
    wall-clock lateness, the CPU the loop's thread spent meanwhile (its own work, as opposed to
    waiting for a core on a busy machine), and when it happened."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not stop.is_set():
        expected = loop.time() + 0.005
        cpu = time.thread_time()
        await asyncio.sleep(0.005)
        lateness = max(0.0, loop.time() - expected)
        lags.append((lateness, min(lateness, time.thread_time() - cpu), expected - start))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    from services.common.testing import free_port
    from services.runtime.config import Settings
    from services.runtime.server import create_server

    port = free_port()
    model = start_model_server(port)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as root:
        models = Path(root) / "models.yaml"
        models.write_text(yaml.safe_dump({"roles": {"chat": {
            "endpoint": f"http://127.0.0.1:{port}/v1", "model": "bad", "max_tokens": 512,
        }}}))
        settings = Settings(address="127.0.0.1:0", database=Path(root) / "runtime.db", models_file=models,
                            standalone=True, max_repairs=2)
        server = await create_server(settings)
        stop, lags = asyncio.Event(), list[tuple[float, float, float]]()
        watcher = asyncio.create_task(watch_loop(stop, lags))
        outcomes: Counter[str] = Counter()
        internal: list[str] = []
        calls = 0
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
                for _ in range(100):  # until the model server answers
                    if model.poll() is not None:
                        raise SystemExit("the bad model server exited")
                    try:
                        await stub.Chat(runtime_pb2.ChatRequest(message="warm up"), timeout=30)
                        break
                    except grpc.aio.AioRpcError:
                        await asyncio.sleep(0.2)
                gate = asyncio.Semaphore(args.concurrency)

                async def one(index: int) -> None:
                    nonlocal calls
                    async with gate:
                        try:
                            reply = await stub.Chat(runtime_pb2.ChatRequest(message=f"task {index}"), timeout=120)
                        except grpc.aio.AioRpcError as exc:
                            outcomes[exc.code().name] += 1
                            if exc.code() is grpc.StatusCode.INTERNAL:
                                internal.append(exc.details() or "")
                            return
                        calls += reply.task.steps
                        outcomes[common_pb2.TaskStatus.Name(reply.task.status)] += 1
                        if "internal" in reply.task.error:
                            internal.append(reply.task.error)

                index = 0
                while calls < args.outputs:
                    batch = [one(index + i) for i in range(args.concurrency * 4)]
                    index += len(batch)
                    await asyncio.gather(*batch)
        finally:
            stop.set()
            await watcher
            await server.stop(grace=1.0)
            model.terminate()
            model.wait()
    lags.sort()
    stalls = [lag for lag, _, _ in lags]
    busy = max((cpu for _, cpu, _ in lags), default=0.0) * 1000
    print(f"bad outputs generated: {calls} in {index} tasks (target >= {args.outputs})")
    print(f"task outcomes: {dict(outcomes)}")
    print(f"internal errors: {len(internal)} (target 0)")
    for error in internal[:5]:
        print(f"  {error[:200]}")
    longest = stalls[-1] * 1000 if stalls else 0.0
    p99 = stalls[int(len(stalls) * 0.99)] * 1000 if stalls else 0.0
    print(f"longest stall of other tasks: {longest:.0f} ms, p99 {p99:.1f} ms (target <= 100 ms)")
    print("  longest five (ms, of which the loop's own CPU, at s): "
          + ", ".join(f"{lag * 1000:.0f} ({cpu * 1000:.0f}) at {at:.1f}" for lag, cpu, at in lags[-5:]))
    print(f"longest stall spent on the loop's own work: {busy:.0f} ms (the rest is waiting for a core)")
    print(f"wall time: {time.monotonic() - started:.0f} s")
    return 0 if not internal and longest <= 100 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))  # the model server's own process
    else:
        sys.exit(asyncio.run(main()))
