"""Runs evaluation tasks through a running DuckLM gateway, as a user would: send the request,
approve what it asks for, wait for the task to rest, then judge the reply, the log and the files.

Nothing here starts services or knows about models; `run_eval.py` does that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from scripts.eval.scoring import TaskResult, judge
from scripts.eval.suite import EvalTask, make_workspace

__all__ = ["RESTING", "run_task", "run_tasks"]

RESTING = ("completed", "failed", "cancelled")
# Longest a task may take before the harness gives up on it (it is then cancelled).
TASK_TIMEOUT_SECONDS = 300.0
POLL_SECONDS = 0.2


async def _events(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = ""
    while True:
        params: dict[str, Any] = {"page_size": 500}
        if token:
            params["page_token"] = token
        page = (await client.get(f"/v1/tasks/{task_id}/events", params=params)).raise_for_status().json()
        events += page["events"]
        token = page.get("next_page_token", "")
        if not token:
            return events


async def _wait_for_rest(client: httpx.AsyncClient, task_id: str, *, approve: bool) -> dict[str, Any]:
    deadline = time.monotonic() + TASK_TIMEOUT_SECONDS
    decided: set[str] = set()
    while time.monotonic() < deadline:
        task: dict[str, Any] = (await client.get(f"/v1/tasks/{task_id}")).raise_for_status().json()
        if task["status"] in RESTING:
            return task
        pending = task.get("pending_approval_id") or ""
        if task["status"] == "waiting_approval" and pending and pending not in decided:
            decided.add(pending)
            verb = "approve" if approve else "deny"
            body = {"scope": "once", "reason": "eval harness"} if approve else {"reason": "eval harness"}
            (await client.post(f"/v1/approvals/{pending}/{verb}", json=body)).raise_for_status()
        await asyncio.sleep(POLL_SECONDS)
    await client.post(f"/v1/tasks/{task_id}/cancel", json={"reason": "eval harness: timed out"})
    return {**task, "status": "timeout"}


async def run_task(client: httpx.AsyncClient, workspace: Path, task: EvalTask, *, max_steps: int) -> TaskResult:
    make_workspace(workspace, task.files_before)
    started = time.perf_counter()
    try:
        return await _run(client, workspace, task, max_steps=max_steps, started=started)
    except httpx.HTTPError as exc:
        return judge(task, status="error", reply="", events=[], workspace=workspace,
                     seconds=time.perf_counter() - started, max_steps=max_steps, error=repr(exc))


async def _run(client: httpx.AsyncClient, workspace: Path, task: EvalTask, *, max_steps: int, started: float) -> TaskResult:
    response = await client.post("/v1/chat", json={"message": task.message})
    if response.status_code != 200:
        return judge(task, status="error", reply="", events=[], workspace=workspace, seconds=0.0, max_steps=max_steps,
                     error=f"HTTP {response.status_code}: {response.text[:300]}")
    task_id = str(response.json()["task_id"])
    final = await _wait_for_rest(client, task_id, approve=task.approve)
    seconds = time.perf_counter() - started
    events = await _events(client, task_id)
    errors = [e["data"].get("message", "") for e in events if e["type"] == "task_failed" or
              (e["type"] == "status_changed" and e["data"].get("to") == "failed")]
    return judge(
        task, status=str(final["status"]), reply=str(final.get("last_reply") or ""), events=events,
        workspace=workspace, seconds=seconds, max_steps=max_steps,
        error=str(final.get("error") or (errors[-1] if errors else "")),
    )


async def run_tasks(
    gateway_url: str, workspace: Path, tasks: Sequence[EvalTask], *, max_steps: int, verbose: bool = True
) -> list[TaskResult]:
    """Runs `tasks` one after another (each on a fresh copy of the workspace)."""
    results: list[TaskResult] = []
    async with httpx.AsyncClient(base_url=gateway_url, timeout=TASK_TIMEOUT_SECONDS) as client:
        for task in tasks:
            result = await run_task(client, workspace, task, max_steps=max_steps)
            results.append(result)
            if verbose:
                print(f"  {result.id:<18} {result.status:<10} tools={','.join(result.tools) or '-'} "
                      f"{result.seconds:.1f}s {result.reply[:60]!r}", flush=True)
    return results
