"""Pattern grants through the REST API and the real stack: approving a run_command call with
`"scope": "task_pattern"` lets the task run the same pattern on other workspace paths without
asking again, and nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.gateway.conftest import GatewayStack
from tests.gateway.streams import wait_for_status


async def next_approval(api: httpx.AsyncClient, task_id: str, after: str, timeout: float = 30.0) -> dict[str, Any]:
    """The task once it waits on an approval other than `after`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        task: dict[str, Any] = (await api.get(f"/v1/tasks/{task_id}")).json()
        if task["status"] == "waiting_approval" and task["pending_approval_id"] not in ("", after):
            return task
        assert task["status"] not in ("completed", "failed", "cancelled"), task
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task_id} asked for no new approval within {timeout}s: {task}")
        await asyncio.sleep(0.05)


def touch(*paths: str) -> dict[str, object]:
    return {"action": "call_tool", "tool": "run_command", "arguments": {"argv": ["touch", *paths]}}


async def test_a_pattern_grant_covers_the_pattern_for_the_rest_of_the_task(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script(
        [
            touch("first.txt"),
            touch("second.txt", "third.txt"),  # the same pattern: runs under the grant
            {"action": "call_tool", "tool": "run_command", "arguments": {"argv": ["mkdir", "made"]}},
            {"action": "respond", "message": "done"},
        ]
    )
    waiting = (await api.post("/v1/chat", json={"message": "touch some files"})).json()
    assert waiting["status"] == "waiting_approval", waiting
    approval_id = waiting["task"]["pending_approval_id"]
    shown = (await api.get(f"/v1/approvals/{approval_id}")).json()
    assert shown["pattern"] == "run_command in ./: touch PATHS..." and len(shown["pattern_hash"]) == 64

    granted = await api.post(f"/v1/approvals/{approval_id}/approve", json={"scope": "task_pattern"})
    assert granted.status_code == 200, granted.text
    assert granted.json()["scope"] == "task_pattern" and granted.json()["decided_by"] == "human via rest"
    # mkdir is another program: the task stops for a new approval there.
    again = await next_approval(api, waiting["task_id"], approval_id)
    for name in ("first.txt", "second.txt", "third.txt"):
        assert (gateway_stack.workspace / name).exists(), name
    assert not (gateway_stack.workspace / "made").exists()
    pending = (await api.get(f"/v1/approvals/{again['pending_approval_id']}")).json()
    assert pending["arguments"] == {"argv": ["mkdir", "made"]}
    await api.post(f"/v1/approvals/{again['pending_approval_id']}/deny", json={"reason": "not that"})
    await wait_for_status(api, waiting["task_id"], "completed")
