"""Approvals through the REST API: a gated tool call waits, is listed as pending, and approving
(once or for the task) or denying it carries the task on; bad input gets a clear 4xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.conftest import GatewayStack
from tests.gateway.streams import wait_for_status


def write(path: str, content: str = "quack") -> dict[str, Any]:
    return {"action": "call_tool", "tool": "write_file", "arguments": {"path": path, "content": content}}


async def start_gated(
    api: httpx.AsyncClient, stack: GatewayStack, *outputs: dict[str, Any], path: str
) -> dict[str, Any]:
    stack.model.script([write(path), *outputs])
    body = (await api.post("/v1/chat", json={"message": f"Write {path}"})).json()
    assert body["status"] == "waiting_approval", body
    return dict(body["task"])


async def test_a_gated_call_is_listed_then_approved_and_runs(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    task = await start_gated(
        api, gateway_stack, {"action": "respond", "message": "Done, file written."}, path="a.txt"
    )
    pending = (await api.get("/v1/approvals", params={"task_id": task["id"]})).json()["approvals"]
    assert [approval["id"] for approval in pending] == [task["pending_approval_id"]]
    approval = pending[0]
    assert approval["state"] == "pending" and approval["tool"] == "write_file"
    assert approval["arguments"] == {"path": "a.txt", "content": "quack"}
    assert len(approval["action_hash"]) == 64
    assert (await api.get(f"/v1/approvals/{approval['id']}")).json() == approval

    decided = await api.post(
        f"/v1/approvals/{approval['id']}/approve", json={"reason": "fine", "decided_by": "ada"}
    )
    assert decided.status_code == 200, decided.text
    # Who decided comes from the gateway's approver credential, never from the body.
    assert decided.json()["state"] == "approved" and decided.json()["decided_by"] == "human via rest"
    done = await wait_for_status(api, task["id"], "completed")
    assert done["last_reply"] == "Done, file written."
    assert (gateway_stack.workspace / "a.txt").read_text() == "quack"
    events = (await api.get(f"/v1/tasks/{task['id']}/events")).json()["events"]
    result = next(event for event in events if event["type"] == "tool_result")
    assert result["data"]["ok"] is True
    assert (await api.get("/v1/approvals", params={"task_id": task["id"]})).json()["approvals"] == []
    used = (await api.get("/v1/approvals", params={"task_id": task["id"], "state": "all"})).json()[
        "approvals"
    ]
    assert [approval["state"] for approval in used] == ["used"]


async def test_approve_for_the_task_covers_the_same_action_again(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    task = await start_gated(
        api, gateway_stack, {"action": "respond", "message": "once"}, write("b.txt"),
        {"action": "respond", "message": "twice"}, path="b.txt",
    )
    decided = await api.post(f"/v1/approvals/{task['pending_approval_id']}/approve", json={"scope": "task"})
    assert decided.json()["scope"] == "task"
    await wait_for_status(api, task["id"], "completed", timeout=15.0)
    # The same write in a later turn needs no new approval: the task completes on its own.
    # (Within one turn the runtime never runs an identical call twice.)
    again = await api.post("/v1/chat", json={"task_id": task["id"], "message": "Write it again"})
    assert again.status_code == 200, again.text
    done = await wait_for_status(api, task["id"], "completed", timeout=15.0)
    assert done["last_reply"] == "twice"
    events = (await api.get(f"/v1/tasks/{task['id']}/events")).json()["events"]
    assert [event["data"]["ok"] for event in events if event["type"] == "tool_result"] == [True, True]


async def test_deny_tells_the_model_and_the_task_goes_on(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    task = await start_gated(
        api, gateway_stack, {"action": "respond", "message": "Understood, I won't."}, path="c.txt"
    )
    denied = await api.post(f"/v1/approvals/{task['pending_approval_id']}/deny", json={"reason": "not today"})
    assert denied.status_code == 200, denied.text
    assert denied.json()["state"] == "denied" and denied.json()["reason"] == "not today"
    done = await wait_for_status(api, task["id"], "completed")
    assert done["last_reply"] == "Understood, I won't."
    assert not (gateway_stack.workspace / "c.txt").exists()
    again = await api.post(f"/v1/approvals/{task['pending_approval_id']}/approve")
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "FAILED_PRECONDITION",
        "message": again.json()["error"]["message"],
        "service": "tools",
        "reason": "APPROVAL_ALREADY_DECIDED",
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"scope": "forever"}, "scope"),
        ({"ttl_seconds": -1}, "ttl_seconds"),
        ({"decided_by": 5}, "decided_by"),
        ({"approve": True}, "approve"),
    ],
)
async def test_approve_refuses_bad_bodies(
    api: httpx.AsyncClient, body: dict[str, Any], fragment: str
) -> None:
    response = await api.post("/v1/approvals/anything/approve", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


async def test_unknown_approvals_are_404(api: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/v1/approvals/nope"),
        ("POST", "/v1/approvals/nope/approve"),
        ("POST", "/v1/approvals/nope/deny"),
    ]:
        response = await api.request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["service"] == "tools"


@pytest.mark.parametrize("query", ["state=maybe", "page_size=x", "page_size=-3"])
async def test_approval_listing_refuses_bad_parameters(api: httpx.AsyncClient, query: str) -> None:
    assert (await api.get(f"/v1/approvals?{query}")).status_code == 400
