"""One service per host, simulated: every process of the real stack (real llama-server, real
model) runs on its own loopback address — runtime 127.0.0.2, tools 127.0.0.3, skills 127.0.0.4,
memory 127.0.0.5, gateway 127.0.0.6 — and learns where its peers are only from configuration.
A chat then crosses every host, memory asks the runtime for embeddings across hosts, each
service serves its own Prometheus metrics, and the logs are JSON lines carrying the task id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc
from ducklm_client import TaskStatus
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.stack import LocalStack, StackPorts
from tests.clients.conftest import connect

pytestmark = pytest.mark.model

HOSTS = {
    "runtime": "127.0.0.2",
    "tools": "127.0.0.3",
    "skills": "127.0.0.4",
    "memory": "127.0.0.5",
    "gateway": "127.0.0.6",
}


@pytest.fixture(scope="module")
async def spread(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    data_dir = tmp_path_factory.mktemp("multi-host")
    stack = LocalStack(
        data_dir=data_dir, ports=StackPorts.free(), hosts=dict(HOSTS), log_dir=data_dir / "logs"
    )
    await stack.start(timeout=180.0)
    try:
        yield stack
    finally:
        await stack.stop()


async def test_each_service_listens_only_on_its_own_host(spread: LocalStack) -> None:
    for service in ("runtime", "tools", "skills", "memory"):
        assert spread.address(service).startswith(HOSTS[service] + ":")
        port = spread.address(service).rsplit(":", 1)[1]
        async with grpc.aio.insecure_channel(spread.address(service)) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # Nothing answers on the same port of another address: the peers cannot be reaching it
        # through a default of 127.0.0.1.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_a_chat_through_the_gateway_crosses_every_host(spread: LocalStack) -> None:
    async with httpx.AsyncClient(base_url=spread.gateway_url, timeout=300) as gateway:
        assert spread.gateway_url.startswith("http://127.0.0.6:")
        health = (await gateway.get("/healthz")).json()
        assert health["services"] == {
            "runtime": "serving",
            "tools": "serving",
            "skills": "serving",
            "memory": "serving",
        }
        response = await gateway.post("/v1/chat", json={"message": "Say hi."})
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["status"] == "completed" and body["reply"].strip()

    # The runtime (127.0.0.2) asked tools (127.0.0.3) for the catalogue and skills (127.0.0.4)
    # for the skill list, and recorded the finished task's experience in skills.
    async with grpc.aio.insecure_channel(spread.address("skills")) as channel:
        skills = skills_pb2_grpc.SkillsServiceStub(channel)
        for _ in range(50):  # recorded just after the task comes to rest
            request = skills_pb2.ListExperiencesRequest(task_id=body["task_id"])
            experiences = (await skills.ListExperiences(request, timeout=10)).experiences
            if experiences:
                break
            await asyncio.sleep(0.1)
    assert [experience.task_id for experience in experiences] == [body["task_id"]]


async def test_memory_embeds_through_the_runtime_on_another_host(spread: LocalStack) -> None:
    async with connect(spread) as client:
        memory = await client.remember(
            "The multi-host test keeps its keys under the mat.", tags=["multi-host"]
        )
        found = await client.search("Where are the keys?", tags=["multi-host"])
    assert [hit.memory.id for hit in found.results] == [memory.id]
    assert found.embedding_ms > 0


async def test_the_python_client_chats_with_the_runtime_on_its_host(spread: LocalStack) -> None:
    async with connect(spread) as client:
        result = await client.chat("Name one fruit.")
        assert result.status is TaskStatus.COMPLETED, result.task.error
        statuses = await client.health()
    assert statuses == {"runtime": "serving", "tools": "serving", "skills": "serving", "memory": "serving"}


async def test_each_service_serves_its_metrics_on_its_host(spread: LocalStack) -> None:
    async with connect(spread) as client:
        await client.chat("Say yes.")
    async with httpx.AsyncClient(timeout=10) as http:
        for service in ("runtime", "tools", "skills", "memory"):
            url = spread.metrics_url(service)
            assert url.startswith(f"http://{HOSTS[service]}:")
            text = (await http.get(url)).text
            assert "ducklm_grpc_server_requests_total" in text, (service, text[:500])
            assert 'grpc_method="Check"' in text  # the launcher's health checks, at least
        runtime = (await http.get(spread.metrics_url("runtime"))).text
    chat_line = next(
        line
        for line in runtime.splitlines()
        if line.startswith("ducklm_grpc_server_requests_total")
        and 'grpc_method="Chat"' in line
        and 'grpc_code="OK"' in line
    )
    assert float(chat_line.rsplit(" ", 1)[1]) >= 1
    assert 'ducklm_grpc_server_handling_seconds_bucket{grpc_method="Chat"' in runtime


async def test_logs_are_json_lines_with_the_task_id(spread: LocalStack) -> None:
    async with connect(spread) as client:
        task_id = (await client.chat("Say hi.")).task_id
    assert spread.log_dir is not None
    for _ in range(50):  # the runtime logs the recorded experience just after the task rests
        entries = [
            json.loads(line)
            for line in (spread.log_dir / "runtime.log").read_text().splitlines()
            if line.startswith("{")
        ]
        if any(entry.get("task_id") == task_id for entry in entries):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"no runtime log line carries task_id {task_id}")
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
