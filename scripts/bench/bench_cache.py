"""Prompt-cache reuse and tokens generated per step, on a few eval tasks with the real model.

Starts the real stack (llama-server with the default model), runs a handful of tasks from
`scripts/eval/suite.py` one after another, and reads their `model_call` events:
- prompt tokens served from llama-server's cache after step 1, out of the tokens it had already
  evaluated or generated for the task (`prefix_tokens` in each event): the target is >= 99%;
- the same out of every prompt token (new tool results included), for reference;
- tokens generated per step (one step: choose + fill, or the answer).

    .venv/bin/python scripts/bench/bench_cache.py [--tasks read-meeting,list-root,...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from deploy.stack import LocalStack, StackPorts
from scripts.eval.harness import TASK_TIMEOUT_SECONDS, _events, _wait_for_rest
from scripts.eval.suite import TASKS, make_workspace

DEFAULT_TASKS = ("read-meeting", "list-root", "read-version", "command-wc", "multi-csv-max")
REUSE_TARGET = 0.99


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def task_figures(events: list[dict[str, Any]]) -> dict[str, int]:
    """Sums over one task's model calls after its first step (the first directive)."""
    figures = {"prefix": 0, "prefix_cached": 0, "prompt": 0, "cached": 0, "evaluated": 0, "steps": 0,
               "generated": 0, "calls_after_1": 0}
    directives = 0
    for event in events:
        if event["type"] == "directive":
            directives += 1
            figures["steps"] += 1
            continue
        if event["type"] != "model_call" or event["data"].get("purpose"):
            continue
        data = event["data"]
        timings = data.get("timings") or {}
        figures["generated"] += int((data.get("usage") or {}).get("completion_tokens") or 0)
        if directives == 0:
            continue
        evaluated, cached = int(timings.get("prompt_n", 0)), int(timings.get("cache_n", 0))
        prefix = int(data.get("prefix_tokens") or 0)
        figures["calls_after_1"] += 1
        figures["prompt"] += evaluated + cached
        figures["cached"] += cached
        figures["evaluated"] += evaluated
        figures["prefix"] += prefix
        figures["prefix_cached"] += min(prefix, cached)
    return figures


async def run(task_ids: list[str], data_dir: Path) -> int:
    by_id = {task.id: task for task in TASKS}
    unknown = [name for name in task_ids if name not in by_id]
    if unknown:
        print(f"unknown task: {', '.join(unknown)}", file=sys.stderr)
        return 2
    env = {"DUCKLM_RUNTIME_RECALL_TOP_K": "0", "DUCKLM_RUNTIME_MAX_STEPS": "6"}
    stack = LocalStack(data_dir=data_dir, ports=StackPorts.free(), log_dir=data_dir / "logs", extra_env=env)
    await stack.start(timeout=240.0)
    totals: dict[str, int] = {}
    try:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=TASK_TIMEOUT_SECONDS) as client:
            print(f"{'task':<16} {'steps':>5} {'after step 1: prefix':>21} {'cached':>7} {'reuse':>7} "
                  f"{'evaluated':>9} {'gen/step':>8}")
            for task_id in task_ids:
                task = by_id[task_id]
                make_workspace(data_dir / "workspace")
                answer = (await client.post("/v1/chat", json={"message": task.message})).raise_for_status().json()
                await _wait_for_rest(client, str(answer["task_id"]), approve=task.approve)
                figures = task_figures(await _events(client, str(answer["task_id"])))
                for key, value in figures.items():
                    totals[key] = totals.get(key, 0) + value
                steps = max(figures["steps"], 1)
                print(f"{task_id:<16} {figures['steps']:>5} {figures['prefix']:>21} {figures['prefix_cached']:>7} "
                      f"{_pct(figures['prefix_cached'], figures['prefix']):>7} {figures['evaluated']:>9} "
                      f"{figures['generated'] / steps:>8.1f}", flush=True)
    finally:
        await stack.stop()
    reuse = totals["prefix_cached"] / totals["prefix"] if totals.get("prefix") else 0.0
    verdict = "met" if reuse >= REUSE_TARGET else "not met"
    print()
    print(f"prompt tokens served from cache after step 1 (of those already evaluated): "
          f"{_pct(totals['prefix_cached'], totals['prefix'])} (target >= {REUSE_TARGET:.0%}: {verdict})")
    print(f"prompt tokens served from cache after step 1 (of all, new results included): "
          f"{_pct(totals['cached'], totals['prompt'])} (for reference)")
    print(f"tokens generated per step: {totals['generated'] / max(totals['steps'], 1):.1f} "
          f"over {totals['steps']} steps (smaller is better)")
    return 0 if reuse >= REUSE_TARGET else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated eval task ids")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ducklm-bench-cache-") as data:
        return asyncio.run(run([part for part in args.tasks.split(",") if part], Path(data)))


if __name__ == "__main__":
    sys.exit(main())
