"""Reading Server-Sent Events in tests, and waiting for a task to reach a status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

__all__ = ["collect_sse", "read_sse", "wait_for_status"]


async def read_sse(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event name, parsed data) for each message; comments (keep-alives) are skipped."""
    event, data = "message", list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                text = "\n".join(data)
                yield event, text if text == "[DONE]" else json.loads(text)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].removeprefix(" "))


async def collect_sse(response: httpx.Response) -> list[tuple[str, Any]]:
    return [item async for item in read_sse(response)]


async def wait_for_status(
    api: httpx.AsyncClient, task_id: str, *statuses: str, timeout: float = 30.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        task = (await api.get(f"/v1/tasks/{task_id}")).json()
        if task["status"] in statuses:
            return dict(task)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task_id} is {task['status']}, not {statuses}, after {timeout}s")
        await asyncio.sleep(0.05)
