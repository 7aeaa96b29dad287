"""The whole path, for real: gateway → runtime → llama-server (SmolLM2-135M) → SQLite.

The stack runs as separate processes exactly as `make run` starts them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from deploy.stack import LocalStack

pytestmark = pytest.mark.model

EXPECTED_SERVICES = {
    "runtime": {"ducklm.runtime.v1.RuntimeService", "ducklm.runtime.v1.EmbeddingService"},
    "tools": {"ducklm.tools.v1.ToolsService", "ducklm.approvals.v1.ApprovalsService"},
    "skills": {"ducklm.skills.v1.SkillsService"},
    "memory": {"ducklm.memory.v1.MemoryService"},
}


async def test_chat_gets_a_reply_written_by_the_model(gateway: httpx.AsyncClient, runtime_database: Path) -> None:
    response = await gateway.post("/v1/chat", json={"message": "Say hello to me."})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert body["reply"].strip()
    task_id = body["task_id"]

    # The reply is the model's own output: the text of the staged decision's answer step, and
    # the message of the directive stored for it.
    events = (await gateway.get(f"/v1/tasks/{task_id}/events")).json()["events"]
    model_calls = [event for event in events if event["type"] == "model_call"]
    assert model_calls, events
    assert model_calls[-1]["data"]["stage"] == "answer"
    assert body["reply"].rstrip("…") in model_calls[-1]["data"]["output"]
    directive = [event["data"] for event in events if event["type"] == "directive"][-1]
    assert directive["action"] == "respond" and directive["message"] == body["reply"]
    usage = model_calls[-1]["data"]["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert model_calls[-1]["data"]["timings"]["predicted_n"] > 0

    # The same events are in SQLite, in order and without gaps.
    with sqlite3.connect(runtime_database) as db:
        rows = db.execute("SELECT seq, type FROM events WHERE task_id = ? ORDER BY seq", (task_id,)).fetchall()
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
    assert [event_type for _, event_type in rows] == [event["type"] for event in events]
    assert {"task_created", "user_message", "model_call", "directive", "assistant_message"} <= {t for _, t in rows}

    task = (await gateway.get(f"/v1/tasks/{task_id}")).json()
    assert task["status"] == "completed"
    assert task["last_reply"] == body["reply"]
    assert task["steps"] >= 1


async def test_a_task_continues_with_the_next_message(gateway: httpx.AsyncClient) -> None:
    first = (await gateway.post("/v1/chat", json={"message": "My name is Ada."})).json()
    second = await gateway.post("/v1/chat", json={"message": "What did I just tell you?", "task_id": first["task_id"]})
    assert second.status_code == 200, second.text
    assert second.json()["task_id"] == first["task_id"]
    events = (await gateway.get(f"/v1/tasks/{first['task_id']}/events")).json()["events"]
    user_messages = [event["data"]["text"] for event in events if event["type"] == "user_message"]
    assert user_messages == ["My name is Ada.", "What did I just tell you?"]
    # The second model call saw the first exchange: its prompt is longer than the first's.
    calls = [event["data"] for event in events if event["type"] == "model_call"]
    assert calls[-1]["usage"]["prompt_tokens"] > calls[0]["usage"]["prompt_tokens"]


async def test_events_stream_as_server_sent_events(gateway: httpx.AsyncClient) -> None:
    task_id = (await gateway.post("/v1/chat", json={"message": "Tell me a short fact."})).json()["task_id"]
    seen: list[dict[str, Any]] = []
    async with gateway.stream(
        "GET", f"/v1/tasks/{task_id}/events", headers={"Accept": "text/event-stream"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    stored = (await gateway.get(f"/v1/tasks/{task_id}/events")).json()["events"]
    assert [event["seq"] for event in seen] == [event["seq"] for event in stored]
    assert seen[-1]["type"] == "status_changed" and seen[-1]["data"]["to"] == "completed"


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("POST", "/v1/chat", b"{not json", 400),
        ("POST", "/v1/chat", b"[1, 2]", 400),
        ("POST", "/v1/chat", b'{"message": ""}', 400),
        ("POST", "/v1/chat", b'{"message": 5}', 400),
        ("POST", "/v1/chat", b'{"text": "hi"}', 400),
        ("POST", "/v1/chat", b'{"message": "hi", "task_id": "no-such-task"}', 404),
        ("GET", "/v1/tasks/no-such-task", None, 404),
        ("GET", "/v1/tasks/no-such-task/events", None, 404),
        ("GET", "/v1/tasks/x/events?page_size=abc", None, 400),
        ("GET", "/v1/nothing-here", None, 404),
        ("PUT", "/v1/chat", None, 405),
    ],
)
async def test_malformed_requests_get_a_clear_4xx(
    gateway: httpx.AsyncClient, method: str, path: str, payload: bytes | None, status: int
) -> None:
    response = await gateway.request(method, path, content=payload, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]


async def test_healthz_reports_every_backend(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/healthz")
    assert response.status_code == 200, response.text
    assert response.json()["services"] == {name: "serving" for name in EXPECTED_SERVICES}


async def test_webchat_page_is_served(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/v1/chat" in response.text


@pytest.mark.parametrize("service", sorted(EXPECTED_SERVICES))
async def test_each_grpc_service_serves_health_and_reflection(stack: LocalStack, service: str) -> None:
    async with grpc.aio.insecure_channel(stack.address(service)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", *EXPECTED_SERVICES[service]):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        listed = {svc.name async for reply in responses for svc in reply.list_services_response.service}
    assert EXPECTED_SERVICES[service] | {"grpc.health.v1.Health"} <= listed
