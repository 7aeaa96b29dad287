"""Every event stream of a new task starts at its task_created event: POST /v1/chat streamed,
the task's SSE events, and (through the same runtime call) gRPC StreamChat. A continued task's
stream starts at the new message."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import GatewayStack
from tests.gateway.streams import collect_sse


def reply(text: str) -> dict[str, str]:
    return {"action": "respond", "message": text}


async def test_streams_start_at_task_created(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([reply("First."), reply("Second.")])
    async with api.stream("POST", "/v1/chat", json={"message": "Open a task", "stream": True}) as response:
        events = await collect_sse(response)
    assert events[0][0] == "task_created"
    assert events[0][1]["data"]["message"] == "Open a task"
    task_id = events[0][1]["task_id"]

    async with api.stream("GET", f"/v1/tasks/{task_id}/events", params={"stream": "true"}) as response:
        replayed = [name for name, _ in await collect_sse(response)]
    assert replayed[0] == "task_created"

    body = {"message": "Go on", "task_id": task_id, "stream": True}
    async with api.stream("POST", "/v1/chat", json=body) as response:
        continued = [name for name, _ in await collect_sse(response)]
    assert continued[0] == "user_message" and "task_created" not in continued
