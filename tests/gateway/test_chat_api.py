"""POST /v1/chat (JSON and streamed) and the task routes, against the real stack with the
scripted model: good input gets the task's real data, bad input a 4xx with a JSON error."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.gateway.conftest import GatewayStack
from tests.gateway.streams import collect_sse, wait_for_status

GATED = {"action": "call_tool", "tool": "write_file", "arguments": {"path": "gated.txt", "content": "hi"}}


def reply(text: str) -> dict[str, str]:
    return {"action": "respond", "message": text}


async def test_chat_returns_the_reply_and_the_task(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([reply("Quack! Hello.")])
    response = await api.post("/v1/chat", json={"message": "Say hello"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reply"] == "Quack! Hello."
    assert body["status"] == "completed"
    assert body["task"]["id"] == body["task_id"]
    assert body["task"]["title"] == "Say hello"
    assert body["task"]["steps"] == 1
    assert body["task"]["usage"]["prompt_tokens"] > 0
    # The model saw the user's message.
    assert "Say hello" in json.dumps(gateway_stack.model.requests[-1]["messages"])


async def test_chat_continues_a_task(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([reply("Nice to meet you, Ada."), reply("You are Ada.")])
    first = (await api.post("/v1/chat", json={"message": "I am Ada."})).json()
    second = await api.post("/v1/chat", json={"message": "Who am I?", "task_id": first["task_id"]})
    assert second.status_code == 200, second.text
    assert second.json()["task_id"] == first["task_id"]
    assert second.json()["reply"] == "You are Ada."
    assert "I am Ada." in json.dumps(gateway_stack.model.requests[-1]["messages"])


async def test_chat_streams_the_task_events_and_the_reply_token_by_token(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    text = "A streamed answer, written a few characters at a time."
    gateway_stack.model.script([reply(text)])
    async with api.stream("POST", "/v1/chat", json={"message": "Stream please", "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await collect_sse(response)
    names = [name for name, _ in events]
    assert names[:2] == ["task_created", "user_message"] and events[0][1]["task_id"]
    tokens = [data["data"]["reply"] for name, data in events if name == "model_token"]
    assert len([t for t in tokens if t]) > 3, "the reply arrives in several pieces"
    assert "".join(tokens) == text
    assert names.index("model_token") < names.index("assistant_message")
    assert events[-1][1]["type"] == "status_changed" and events[-1][1]["data"]["to"] == "completed"
    # Stored events carry their seq; live tokens have none.
    assert all(data["seq"] > 0 for name, data in events if name != "model_token")
    assert all(data["seq"] == 0 for name, data in events if name == "model_token")


async def test_accept_event_stream_also_streams(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([reply("ok")])
    async with api.stream(
        "POST", "/v1/chat", json={"message": "hi"}, headers={"Accept": "text/event-stream"}
    ) as response:
        events = await collect_sse(response)
    assert any(name == "assistant_message" for name, _ in events)


async def test_a_streamed_chat_on_an_unknown_task_is_a_plain_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/chat", json={"message": "hi", "task_id": "no-such-task", "stream": True})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert response.json()["error"]["service"] == "runtime"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"message": ""}', "message"),
        (b'{"message": "   "}', "empty"),
        (b'{"message": 5}', "message"),
        (b'{"text": "hi"}', "message"),
        (b'{"message": "hi", "colour": "red"}', "colour"),
        (b'{"message": "hi", "stream": "perhaps"}', "stream"),
        (b'{"message": "hi", "task_id": 7}', "task_id"),
        (b'{"message": "\\ud800"}', "JSON"),
        (b'{"message": NaN}', "JSON"),
        (b'{"message": "hi", "task_id": ' + b"9" * 40 + b"}", "64 bits"),
        (b'{"message": ' + b"[" * 100 + b"]" * 100 + b"}", "nested"),
        (json.dumps({"message": "x" * 32_001}).encode(), "message"),
    ],
)
async def test_chat_refuses_bad_bodies_with_a_400_that_says_why(
    api: httpx.AsyncClient, payload: bytes, fragment: str
) -> None:
    response = await api.post("/v1/chat", content=payload, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert fragment in error["message"]


async def test_an_oversized_body_is_refused_with_413(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/chat", content=b'{"message": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_task_that_cannot_take_a_message_is_a_409(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([GATED])
    waiting = (await api.post("/v1/chat", json={"message": "Write gated.txt"})).json()
    assert waiting["status"] == "waiting_approval"
    response = await api.post("/v1/chat", json={"message": "And more", "task_id": waiting["task_id"]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "FAILED_PRECONDITION"
    await api.post(f"/v1/tasks/{waiting['task_id']}/cancel")


async def test_tasks_are_listed_newest_first_in_pages(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([reply("one"), reply("two"), reply("three")])
    ids = [(await api.post("/v1/chat", json={"message": f"paging {n}"})).json()["task_id"] for n in range(3)]
    first = (await api.get("/v1/tasks", params={"page_size": 2})).json()
    assert [task["id"] for task in first["tasks"]] == ids[::-1][:2]
    assert first["next_page_token"]
    second = (
        await api.get("/v1/tasks", params={"page_size": 2, "page_token": first["next_page_token"]})
    ).json()
    assert second["tasks"][0]["id"] == ids[0]
    completed = (await api.get("/v1/tasks", params={"status": "completed", "page_size": 500})).json()["tasks"]
    assert {task["status"] for task in completed} == {"completed"}
    assert set(ids) <= {task["id"] for task in completed}
    assert (await api.get("/v1/tasks", params={"status": "failed", "page_size": 500})).json()["tasks"] == [
        task
        for task in (await api.get("/v1/tasks", params={"page_size": 500})).json()["tasks"]
        if task["status"] == "failed"
    ]


@pytest.mark.parametrize(
    "query",
    [
        "page_size=abc",
        "page_size=-1",
        "page_size=501",
        "page_size=99999999999999999999",
        "status=sleeping",
        "page_token=not-a-token",
    ],
)
async def test_task_listing_refuses_bad_parameters(api: httpx.AsyncClient, query: str) -> None:
    response = await api.get(f"/v1/tasks?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_ARGUMENT"


async def test_get_task_and_its_404(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([reply("here")])
    task_id = (await api.post("/v1/chat", json={"message": "get me"})).json()["task_id"]
    task = (await api.get(f"/v1/tasks/{task_id}")).json()
    assert task["id"] == task_id and task["last_reply"] == "here" and task["create_time"].endswith("Z")
    missing = await api.get("/v1/tasks/does-not-exist")
    assert missing.status_code == 404
    assert "does-not-exist" in missing.json()["error"]["message"]


async def test_cancel_a_waiting_task_then_again(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([GATED])
    task_id = (await api.post("/v1/chat", json={"message": "Write gated.txt"})).json()["task_id"]
    cancelled = await api.post(f"/v1/tasks/{task_id}/cancel", json={"reason": "changed my mind"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    events = (await api.get(f"/v1/tasks/{task_id}/events")).json()["events"]
    assert events[-1]["data"] == {"from": "waiting_approval", "to": "cancelled", "reason": "changed my mind"}
    again = await api.post(f"/v1/tasks/{task_id}/cancel")
    assert again.status_code == 409
    assert (await api.post("/v1/tasks/nope/cancel")).status_code == 404
    assert (await api.post(f"/v1/tasks/{task_id}/cancel", json={"why": "x"})).status_code == 400


async def test_events_are_paged_in_order(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([reply("paged")])
    task_id = (await api.post("/v1/chat", json={"message": "events"})).json()["task_id"]
    everything = (await api.get(f"/v1/tasks/{task_id}/events")).json()
    assert everything["next_page_token"] == ""
    pages, token = [], ""
    while True:
        page = (
            await api.get(f"/v1/tasks/{task_id}/events", params={"page_size": 2, "page_token": token})
        ).json()
        pages.extend(page["events"])
        token = page["next_page_token"]
        if not token:
            break
    assert pages == everything["events"]
    assert [event["seq"] for event in pages] == list(range(1, len(pages) + 1))
    assert (await api.get(f"/v1/tasks/{task_id}/events?page_size=1001")).status_code == 400


async def test_event_streams_resume_after_a_seq(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([reply("resume")])
    task_id = (await api.post("/v1/chat", json={"message": "resume"})).json()["task_id"]
    stored = (await api.get(f"/v1/tasks/{task_id}/events")).json()["events"]
    async with api.stream(
        "GET", f"/v1/tasks/{task_id}/events", params={"stream": "true", "after_seq": 3}
    ) as response:
        by_query = [data["seq"] for _, data in await collect_sse(response)]
    async with api.stream(
        "GET", f"/v1/tasks/{task_id}/events", headers={"Accept": "text/event-stream", "Last-Event-ID": "3"}
    ) as response:
        by_header = [data["seq"] for _, data in await collect_sse(response)]
    assert by_query == by_header == [event["seq"] for event in stored if event["seq"] > 3]
    bad = await api.get(
        f"/v1/tasks/{task_id}/events", headers={"Accept": "text/event-stream", "Last-Event-ID": "x"}
    )
    assert bad.status_code == 400
    assert (await api.get("/v1/tasks/nope/events?stream=true")).status_code == 404


async def test_a_follow_stream_sees_a_waiting_task_move_on(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([GATED, reply("Written.")])
    task_id = (await api.post("/v1/chat", json={"message": "Write gated.txt"})).json()["task_id"]
    task = await wait_for_status(api, task_id, "waiting_approval")
    seen: list[str] = []
    async with api.stream(
        "GET", f"/v1/tasks/{task_id}/events", params={"stream": "true", "follow": "true", "after_seq": 1}
    ) as response:
        approved = False
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            seen.append(event["type"])
            if event["type"] == "approval_requested" and not approved:
                approved = True
                decision = await api.post(f"/v1/approvals/{task['pending_approval_id']}/approve")
                assert decision.status_code == 200, decision.text
            if event["type"] == "status_changed" and event["data"]["to"] == "completed":
                break
    assert seen.index("approval_requested") < seen.index("approval_decided") < seen.index("tool_result")
    assert seen[-1] == "status_changed"
