"""Backpressure and failure: gRPC codes map to HTTP codes in one table; a dead or slow backend
is a clear 503 naming it; the gateway caps its open streams; a client that leaves a stream
releases it and leaves the task running to its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc

from services.common.server import GrpcServer, ServiceBinding, build_server
from services.common.testing import free_port
from services.gateway.config import Settings
from services.gateway.errors import HTTP_STATUS
from tests.gateway.conftest import GatewayStack, gateway_in_process, gateway_process
from tests.gateway.streams import read_sse, wait_for_status


def test_grpc_codes_map_to_http_codes_consistently() -> None:
    expected = {
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.OUT_OF_RANGE: 400,
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.ALREADY_EXISTS: 409,
        grpc.StatusCode.ABORTED: 409,
        grpc.StatusCode.FAILED_PRECONDITION: 409,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.UNIMPLEMENTED: 501,
        grpc.StatusCode.UNKNOWN: 502,
        grpc.StatusCode.INTERNAL: 502,
        grpc.StatusCode.DATA_LOSS: 502,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.DEADLINE_EXCEEDED: 503,
        grpc.StatusCode.CANCELLED: 503,
    }
    assert HTTP_STATUS == expected
    assert set(HTTP_STATUS) == set(grpc.StatusCode) - {grpc.StatusCode.OK}


def nowhere() -> str:
    return f"127.0.0.1:{free_port()}"


async def test_a_dead_backend_is_a_503_that_names_it() -> None:
    settings = Settings(
        runtime_address=nowhere(), tools_address=nowhere(), skills_address=nowhere(), memory_address=nowhere()
    )
    async with gateway_in_process(settings) as client:
        for path, service in [("/v1/tasks", "runtime"), ("/v1/approvals", "tools"), ("/v1/skills", "skills")]:
            response = await client.get(path)
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "UNAVAILABLE" and error["service"] == service
            assert error["message"].startswith(f"{service} service is unavailable")
            assert response.headers["retry-after"]
        streamed = await client.post("/v1/chat", json={"message": "hi", "stream": True})
        assert streamed.status_code == 503 and streamed.json()["error"]["service"] == "runtime"
        searched = await client.post("/v1/memories/search", json={"text": "x"})
        assert searched.status_code == 503 and searched.json()["error"]["service"] == "memory"
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert all(state.startswith("unavailable") for state in health.json()["services"].values())


class SlowSkills(skills_pb2_grpc.SkillsServiceServicer):
    async def ListSkills(self, request: Any, context: Any) -> skills_pb2.ListSkillsResponse:
        await asyncio.Event().wait()  # never answers: only the gateway's deadline ends the call
        return skills_pb2.ListSkillsResponse()


@pytest.fixture
async def slow_skills() -> AsyncIterator[GrpcServer]:
    server = await build_server(
        [
            ServiceBinding(
                # Only ListSkills is served; the generated base answers the others UNIMPLEMENTED.
                SlowSkills(),  # type: ignore[abstract]
                skills_pb2_grpc.add_SkillsServiceServicer_to_server,
                "ducklm.skills.v1.SkillsService",
            )
        ],
        "127.0.0.1:0",
    )
    try:
        yield server
    finally:
        await server.stop(grace=0)


async def test_a_slow_backend_is_a_503_that_names_it(slow_skills: GrpcServer) -> None:
    settings = Settings(skills_address=slow_skills.address, call_timeout_seconds=0.3)
    async with gateway_in_process(settings) as client:
        started = asyncio.get_running_loop().time()
        response = await client.get("/v1/skills")
        assert asyncio.get_running_loop().time() - started < 3
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "DEADLINE_EXCEEDED" and error["service"] == "skills"
    assert error["message"].startswith("skills service did not answer in time")


@pytest.fixture
async def one_stream_gateway(gateway_stack: GatewayStack) -> AsyncIterator[str]:
    """A gateway process over the stack's backends that allows a single open event stream."""
    port = free_port()
    env = {
        **gateway_stack.gateway_env(),
        "DUCKLM_GATEWAY_PORT": str(port),
        "DUCKLM_GATEWAY_MAX_OPEN_STREAMS": "1",
        "DUCKLM_GATEWAY_HEARTBEAT_SECONDS": "0.2",
    }
    async with gateway_process(env, port) as url:
        yield url


async def open_streams(client: httpx.AsyncClient) -> int:
    return int((await client.get("/healthz")).json()["open_streams"])


async def wait_for_open_streams(client: httpx.AsyncClient, expected: int) -> None:
    for _ in range(100):
        if await open_streams(client) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"open streams stayed at {await open_streams(client)}, not {expected}")


async def test_streams_past_the_cap_get_a_503_and_leaving_frees_the_slot(
    one_stream_gateway: str, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([{"action": "respond", "message": "hello"}])
    async with httpx.AsyncClient(base_url=one_stream_gateway, timeout=30.0) as client:
        task_id = (await client.post("/v1/chat", json={"message": "hi"})).json()["task_id"]
        follow = {"stream": "true", "follow": "true"}
        async with client.stream("GET", f"/v1/tasks/{task_id}/events", params=follow) as first:
            assert first.status_code == 200
            # Read up to the first keep-alive: the whole backlog is in, and the stream stays open.
            # (The iterator is kept: dropping it would close the response.)
            lines = first.aiter_lines()
            while not (await anext(lines)).startswith(": keep-alive"):
                pass
            assert await open_streams(client) == 1
            refused = await client.get(f"/v1/tasks/{task_id}/events", params=follow)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
            chat_refused = await client.post("/v1/chat", json={"message": "hi", "stream": True})
            assert chat_refused.status_code == 503
        # The client left: the gateway cancels its gRPC stream and frees the slot.
        await wait_for_open_streams(client, 0)
        async with client.stream("GET", f"/v1/tasks/{task_id}/events", params={"stream": "true"}) as again:
            assert again.status_code == 200


async def test_leaving_a_chat_stream_does_not_stop_the_task(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script(
        [
            {"action": "call_tool", "tool": "list_dir", "arguments": {}},
            {"action": "call_tool", "tool": "list_dir", "arguments": {}},
            {"action": "respond", "message": "Finished without you."},
        ]
    )
    async with api.stream(
        "POST", "/v1/chat", json={"message": "Work while I'm away", "stream": True}
    ) as response:
        async for _, event in read_sse(response):
            task_id = event["task_id"]
            break
    task = await wait_for_status(api, task_id, "completed", "failed")
    assert task["status"] == "completed" and task["last_reply"] == "Finished without you."
    await wait_for_open_streams(api, 0)
