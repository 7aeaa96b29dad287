"""Prometheus metrics: the gRPC interceptor every server gets from `build_server` (requests,
errors by code, latency, in flight), the /metrics HTTP endpoint, the HTTP middleware for the
gateway, and the runtime's own model/task metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services.common.metrics import HttpMetricsMiddleware, metrics_address, serve_metrics, split_method
from services.common.server import GrpcServer
from services.common.testing import free_port
from services.runtime import metrics as runtime_metrics
from services.skills.config import Settings as SkillsSettings
from services.skills.server import create_server as create_skills

SKILLS = "ducklm.skills.v1.SkillsService"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def skills_server(tmp_path: Path) -> AsyncIterator[GrpcServer]:
    server = await create_skills(
        SkillsSettings(
            address="127.0.0.1:0", database=tmp_path / "skills.db", proposals_dir=tmp_path / "proposals"
        )
    )
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


async def test_every_grpc_call_is_counted_timed_and_its_errors_kept_by_code(
    skills_server: GrpcServer,
) -> None:
    ok = {"grpc_service": SKILLS, "grpc_method": "ListSkills", "grpc_code": "OK"}
    missing = {"grpc_service": SKILLS, "grpc_method": "GetSkill", "grpc_code": "NOT_FOUND"}
    before_ok, before_missing = (
        sample("ducklm_grpc_server_requests_total", **ok),
        sample("ducklm_grpc_server_requests_total", **missing),
    )
    before_errors = sample("ducklm_grpc_server_errors_total", **missing)
    before_timed = sample(
        "ducklm_grpc_server_handling_seconds_count", grpc_service=SKILLS, grpc_method="ListSkills"
    )
    async with grpc.aio.insecure_channel(skills_server.address) as channel:
        stub = skills_pb2_grpc.SkillsServiceStub(channel)
        for _ in range(3):
            await stub.ListSkills(skills_pb2.ListSkillsRequest())
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetSkill(skills_pb2.GetSkillRequest(name="no-such-skill"))
        # A server-streaming call that the client ends: counted once it is over.
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        async for _ in watch:
            assert (
                sample(
                    "ducklm_grpc_server_in_flight", grpc_service="grpc.health.v1.Health", grpc_method="Watch"
                )
                >= 1
            )
            break
        watch.cancel()
    assert sample("ducklm_grpc_server_requests_total", **ok) == before_ok + 3
    assert sample("ducklm_grpc_server_requests_total", **missing) == before_missing + 1
    assert sample("ducklm_grpc_server_errors_total", **missing) == before_errors + 1
    assert sample("ducklm_grpc_server_errors_total", **ok) == 0
    assert (
        sample("ducklm_grpc_server_handling_seconds_count", grpc_service=SKILLS, grpc_method="ListSkills")
        == before_timed + 3
    )


async def test_metrics_are_served_over_http_and_stop_with_the_service() -> None:
    port = free_port()
    stop = await serve_metrics("skills", f"127.0.0.1:{port}")
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "# TYPE ducklm_grpc_server_requests_total counter" in response.text
        assert "process_cpu_seconds_total" in response.text
    finally:
        await stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/metrics")


async def test_metrics_are_off_without_an_address_and_a_taken_port_is_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert metrics_address("runtime", {}) == ""
    assert metrics_address("runtime", {"DUCKLM_RUNTIME_METRICS_ADDRESS": " 0.0.0.0:9090 "}) == "0.0.0.0:9090"
    await (await serve_metrics("runtime", ""))()
    port = free_port()
    stop = await serve_metrics("tools", f"127.0.0.1:{port}")
    try:
        # The same port again: logged and skipped, the service keeps serving.
        with caplog.at_level(logging.WARNING, logger="services.common.metrics"):
            await (await serve_metrics("tools", f"127.0.0.1:{port}"))()
        assert "cannot serve metrics on 127.0.0.1" in caplog.text
    finally:
        await stop()
    with pytest.raises(ValueError, match="HOST:PORT"):
        await serve_metrics("tools", "9090")


def test_method_names_split_into_service_and_method() -> None:
    assert split_method("/ducklm.runtime.v1.RuntimeService/Chat") == (
        "ducklm.runtime.v1.RuntimeService",
        "Chat",
    )
    assert split_method("garbage") == ("unknown", "garbage")


async def test_http_middleware_labels_requests_by_route_template() -> None:
    async def show(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["task_id"])

    app = HttpMetricsMiddleware(Starlette(routes=[Route("/v1/tasks/{task_id}", show)]))
    route = {"method": "GET", "route": "/v1/tasks/{task_id}", "status": "200"}
    before = sample("ducklm_http_requests_total", **route)
    before_missing = sample("ducklm_http_requests_total", method="GET", route="unmatched", status="404")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/v1/tasks/abc123")).text == "abc123"
        await client.get("/v1/tasks/def456")
        assert (await client.get("/nothing")).status_code == 404
    # Task ids never become label values: both requests count under the template.
    assert sample("ducklm_http_requests_total", **route) == before + 2
    assert (
        sample("ducklm_http_requests_total", method="GET", route="unmatched", status="404")
        == before_missing + 1
    )
    assert sample("ducklm_http_request_seconds_count", method="GET", route="/v1/tasks/{task_id}") >= 2


def test_runtime_metrics_record_model_calls_and_task_outcomes() -> None:
    tokens = "ducklm_model_tokens_total"
    before = {kind: sample(tokens, role="chat", kind=kind) for kind in ("prompt", "completion", "cached")}
    hits = sample("ducklm_model_prompt_cache_hits_total", role="chat")
    calls = sample("ducklm_model_call_seconds_count", role="chat")
    runtime_metrics.observe_model_call(
        "chat", 250.0, prompt_tokens=100, completion_tokens=20, cached_tokens=80, first_token_ms=40.0
    )
    runtime_metrics.observe_model_call("chat", 300.0, prompt_tokens=50, completion_tokens=10, cached_tokens=0)
    assert sample(tokens, role="chat", kind="prompt") == before["prompt"] + 150
    assert sample(tokens, role="chat", kind="completion") == before["completion"] + 30
    assert sample(tokens, role="chat", kind="cached") == before["cached"] + 80
    assert sample("ducklm_model_prompt_cache_hits_total", role="chat") == hits + 1
    assert sample("ducklm_model_call_seconds_count", role="chat") == calls + 2
    assert sample("ducklm_model_call_seconds_bucket", role="chat", le="0.25") >= 1

    completed = sample("ducklm_task_outcomes_total", status="completed")
    runtime_metrics.observe_task_outcome("COMPLETED")
    assert sample("ducklm_task_outcomes_total", status="completed") == completed + 1
    runtime_metrics.observe_model_error("chat", "unreachable")
    assert sample("ducklm_model_errors_total", role="chat", kind="unreachable") >= 1
    runtime_metrics.observe_tool_call("write_file", "denied")
    assert sample("ducklm_tool_calls_total", tool="write_file", outcome="denied") >= 1
    runtime_metrics.observe_embedding(12.0, texts=3)
    assert sample("ducklm_embedded_texts_total") >= 3
