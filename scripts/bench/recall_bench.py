"""Recall and the first token: how much the turn's automatic memory recall delays the first model
call, against the whole stack with the real models (SmolLM2-135M on llama-server, the real
all-MiniLM-L6-v2 embedding model, the memory service with a few long-term memories).

New tasks alternate with memory and without (`without_memory`); for each, the time from the
user's message to the first model call being sent is read from the event log. Memory's cost to
the first token is the difference of the medians. Target: recall adds <= 20 ms to the first
token. Also printed: what the recall itself takes (its whole cost to the first token while it
ran before the first model call).

    .venv/bin/python scripts/bench/recall_bench.py [--tasks 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from datetime import timedelta
from pathlib import Path

import grpc
from ducklm.common.v1 import common_pb2
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from deploy.stack import LocalStack, StackPorts

TARGET_ADDED_MS = 20.0
MEMORIES = [
    "The user's favourite colour is green.",
    "The user's cat is called Miso.",
    "The weekly team meeting is on Tuesday at ten.",
    "The user prefers short answers.",
    "The project's deadline is the end of March.",
]
REQUESTS = ["What colour do I like?", "What is my cat called?", "When is the team meeting?", "Say hello.",
            "When is the deadline?"]


async def before_first_call(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, message: str,
                            without_memory: bool) -> tuple[float, float | None]:
    """One new task: ms from its user message to its first model call being sent, and the
    recall's own duration (None without memory)."""
    reply = await stub.Chat(runtime_pb2.ChatRequest(message=message, without_memory=without_memory), timeout=300)
    events = (await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=reply.task.id, page_size=1000))).events
    user = next(e for e in events if e.type == common_pb2.EVENT_TYPE_USER_MESSAGE)
    call = next(e for e in events if e.type == common_pb2.EVENT_TYPE_MODEL_CALL)
    sent = call.create_time.ToDatetime() - timedelta(milliseconds=call.data.fields["latency_ms"].number_value)
    recalled = [e for e in events if e.type == common_pb2.EVENT_TYPE_MEMORY_RECALLED]
    fields = recalled[0].data.fields if recalled else {}
    duration = fields["duration_ms"].number_value if "duration_ms" in fields else None
    return (sent - user.create_time.ToDatetime()).total_seconds() * 1000, duration


async def bench(tasks: int) -> None:
    with tempfile.TemporaryDirectory() as data:
        stack = LocalStack(data_dir=Path(data), ports=StackPorts.free(), with_gateway=False,
                           extra_env={"DUCKLM_LOG_LEVEL": "warning"})
        await stack.start(timeout=240)
        try:
            async with grpc.aio.insecure_channel(stack.address("memory")) as memory_channel, \
                    grpc.aio.insecure_channel(stack.address("runtime")) as channel:
                memory = memory_pb2_grpc.MemoryServiceStub(memory_channel)
                for text in MEMORIES:
                    await memory.Remember(memory_pb2.RememberRequest(
                        text=text, kind="fact", scope=memory_pb2.MEMORY_SCOPE_LONG_TERM), timeout=120)
                stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
                await before_first_call(stub, "warm up", False)  # load weights, fill caches
                with_memory: list[float] = []
                without: list[float] = []
                recall_ms: list[float] = []
                for index in range(tasks):
                    message = REQUESTS[index // 2 % len(REQUESTS)]
                    off = index % 2 == 1
                    waited, duration = await before_first_call(stub, message, off)
                    (without if off else with_memory).append(waited)
                    if duration is not None:
                        recall_ms.append(duration)
        finally:
            await stack.stop()
    added = statistics.median(with_memory) - statistics.median(without)
    print(f"from the user's message to the first model call (median of {len(with_memory)} and {len(without)} "
          f"new tasks): with memory {statistics.median(with_memory):.1f} ms, without {statistics.median(without):.1f} ms")
    print(f"memory recall adds {added:.1f} ms to the first token (target <= {TARGET_ADDED_MS:.0f} ms)"
          f"{'' if added <= TARGET_ADDED_MS else '  NOT REACHED'}")
    if recall_ms:
        print(f"  the recall itself (embedding on this CPU + search) takes {statistics.median(recall_ms):.1f} ms "
              f"median, {max(recall_ms):.1f} ms at most: all of it was on the way to the first token while it "
              "ran before the first model call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10, help="new tasks, half of them without memory")
    args = parser.parse_args()
    print("== memory recall and the first token (real models) ==")
    asyncio.run(bench(args.tasks))


if __name__ == "__main__":
    main()
