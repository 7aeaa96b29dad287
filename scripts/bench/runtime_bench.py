"""Runtime benchmark. Prints, against the real llama-server with the real tiny model:
  (a) time in llama-server vs the whole task time through the gateway, per step and in total;
  (b) prompt tokens served from llama-server's cache vs re-evaluated, per step;
  (c) time to first token through the gateway vs straight from llama-server.
Targets: whole-task wall time <= 1.02x of model time; >= 95% of prompt tokens from cache after step 1
(new text included; bench_cache.py measures the reuse of what the server already holds). The
runtime's own cost per step and its throughput under concurrency are bench_throughput.py's.

Run with `make bench` (or `.venv/bin/python scripts/bench/runtime_bench.py`).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.stack import LocalStack, StackPorts

CONVERSATION = [
    "Hello! What files are in my workspace?",
    "Read notes.txt and tell me what it says.",
    "What does the README say?",
    "Name one colour.",
    "Thank you, goodbye.",
]
REPO = Path(__file__).resolve().parents[2]


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


async def ttft_gateway(client: httpx.AsyncClient, message: str, task_id: str | None) -> tuple[float, str]:
    """Time to the first reply token through the gateway's streaming chat (SSE), and the task id."""
    body: dict[str, str] = {"message": message}
    if task_id:
        body["task_id"] = task_id
    started = time.perf_counter()
    first = None
    new_task_id = task_id or ""
    async with client.stream("POST", "/v1/chat", json=body, headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            payload = json.loads(line[6:])
            new_task_id = payload.get("task_id") or new_task_id
            if first is None and payload.get("type") == "model_token" and (payload.get("data") or {}).get("text"):
                first = (time.perf_counter() - started) * 1000
    return first or float("nan"), new_task_id


async def real_model_run() -> None:
    print("== (a)(b)(c) multi-step task against the real llama-server (SmolLM2-135M) ==")
    with tempfile.TemporaryDirectory() as data:
        # Read-only tools only, so no step waits for a human and the figures are the machine's.
        policy = yaml.safe_load((REPO / "config" / "tools.yaml").read_text())
        for tool in ("write_file", "make_dir", "run_command"):
            policy["tools"][tool] = {"enabled": False}
        (Path(data) / "tools.yaml").write_text(yaml.safe_dump(policy))
        workspace = Path(data) / "workspace"
        workspace.mkdir()
        (workspace / "notes.txt").write_text("Buy milk. Call Ada on Friday.\n")
        (workspace / "README.md").write_text("# Demo project\nA small demo.\n")
        stack = LocalStack(
            data_dir=Path(data), ports=StackPorts.free(), log_dir=Path(data) / "logs",
            extra_env={"DUCKLM_TOOLS_POLICY_FILE": str(Path(data) / "tools.yaml")},
        )
        await stack.start(timeout=240)
        try:
            async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=300) as client:
                await client.post("/v1/chat", json={"message": "warm up"})  # load weights, fill caches
                task_id: str | None = None
                wall = []
                for message in CONVERSATION:
                    started = time.perf_counter()
                    reply = (await client.post("/v1/chat", json={"message": message, **({"task_id": task_id} if task_id else {})})).json()
                    wall.append((time.perf_counter() - started) * 1000)
                    task_id = reply["task_id"]
                events = (await client.get(f"/v1/tasks/{task_id}/events", params={"page_size": 1000})).json()["events"]
            calls = [e["data"] for e in events if e["type"] == "model_call"]
            first_call_event = next(e for e in events if e["type"] == "model_call")
            turns: list[list[dict[str, Any]]] = []
            for event in events:
                if event["type"] == "user_message":
                    turns.append([])
                if turns:
                    turns[-1].append(event)
            print(f"{'turn':>4} {'steps':>5} {'llama ms':>9} {'tools ms':>8} {'memory ms':>9} {'gateway ms':>10} "
                  f"{'ratio':>7} {'prompt':>7} {'cached':>7} {'evaluated':>9} {'from cache':>10}")
            total_model = total_wall = total_tools = total_memory = 0.0
            later_prompt = later_cached = 0
            for index, (turn, wall_ms) in enumerate(zip(turns, wall), start=1):
                turn_calls = [e["data"] for e in turn if e["type"] == "model_call"]
                model_ms = sum(c["latency_ms"] for c in turn_calls)
                tools_ms = sum(e["data"].get("duration_ms", 0) for e in turn if e["type"] == "tool_result")
                memory_ms = sum(e["data"].get("duration_ms", 0) for e in turn if e["type"] in ("memory_recalled", "memory_stored"))
                prompt = sum(c["timings"].get("prompt_n", 0) + c["timings"].get("cache_n", 0) for c in turn_calls)
                cached = sum(c["timings"].get("cache_n", 0) for c in turn_calls)
                total_model += model_ms
                total_wall += wall_ms
                total_tools += tools_ms
                total_memory += memory_ms
                if index > 1:
                    later_prompt += prompt
                    later_cached += cached
                print(f"{index:>4} {len(turn_calls):>5} {model_ms:>9.1f} {tools_ms:>8.1f} {memory_ms:>9.1f} {wall_ms:>10.1f} "
                      f"{wall_ms / model_ms:>6.3f}x {prompt:>7} {cached:>7} {prompt - cached:>9} {pct(cached, prompt):>10}")
            own = total_wall - total_model - total_tools - total_memory
            print(f"total: llama {total_model:.1f} ms, through the gateway {total_wall:.1f} ms: overhead ratio "
                  f"{total_wall / total_model:.3f}x (target <= 1.02x)"
                  f"{'' if total_wall / total_model <= 1.02 else '  NOT REACHED'}")
            print(f"  the rest, per step ({len(calls)} steps): tools {total_tools / len(calls):.2f} ms, memory "
                  f"(embedding on this CPU + search/store) {total_memory / len(calls):.2f} ms, DuckLM itself (gateway, "
                  f"gRPC, SQLite, context) {own / len(calls):.2f} ms")
            print(f"  without memory and tool work: {(total_wall - total_tools - total_memory) / total_model:.3f}x of model time")
            print(f"prompt tokens from cache after step 1: {pct(later_cached, later_prompt)} (target >= 95%)")
            # A compaction replaces older events by a summary: the summary call and the first step
            # after it re-evaluate the prompt by design. The share without those calls:
            steady_prompt = steady_cached = 0
            after_compaction = False
            for event in events[1:]:
                if event["type"] == "context_compacted":
                    after_compaction = True
                if event["type"] != "model_call" or event is first_call_event:
                    continue
                data = event["data"]
                if data.get("purpose") == "compaction":
                    continue
                if after_compaction:
                    after_compaction = False
                    continue
                steady_prompt += data["timings"].get("prompt_n", 0) + data["timings"].get("cache_n", 0)
                steady_cached += data["timings"].get("cache_n", 0)
            compactions = sum(1 for e in events if e["type"] == "context_compacted")
            print(f"  {compactions} compaction(s); from cache on every other step: {pct(steady_cached, steady_prompt)}")

            # (c) time to first token. "Straight from llama-server" is the identical request (same
            # prompt, same schema) as the runtime sent it, timed by the runtime's own HTTP client.
            async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=300) as client:
                gateway_ttft, direct_ttft, recall_ms = [], [], []
                for message in CONVERSATION:
                    ttft, new_task = await ttft_gateway(client, message, None)
                    log = (await client.get(f"/v1/tasks/{new_task}/events")).json()["events"]
                    # The first call that streamed (a staged step's choice is not streamed).
                    first_call = next(e["data"] for e in log
                                      if e["type"] == "model_call" and e["data"].get("first_token_ms") is not None)
                    gateway_ttft.append(ttft)
                    direct_ttft.append(first_call["first_token_ms"])
                    recall_ms.append(sum(e["data"].get("duration_ms", 0) for e in log if e["type"] == "memory_recalled"))
            print(f"time to first token (median of {len(gateway_ttft)} new tasks): through the gateway "
                  f"{statistics.median(gateway_ttft):.1f} ms; straight from llama-server (same request) "
                  f"{statistics.median(direct_ttft):.1f} ms; of the difference, memory recall takes "
                  f"{statistics.median(recall_ms):.1f} ms")
        finally:
            await stack.stop()


async def main() -> None:
    await real_model_run()


if __name__ == "__main__":
    asyncio.run(main())
