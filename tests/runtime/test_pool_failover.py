"""A chat role served by two real llama-servers (the real SmolLM2 model): a task's turns stay on
one server, reusing its cached prefix; once that server is killed the task moves to the other
with a fresh prefix, and its model_call event says where it went and why."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.stack import ensure_llama_server, ensure_model
from services.common.config import repo_root
from services.common.testing import free_port
from services.runtime.config import Settings
from services.runtime.models_config import load_models_config
from services.runtime.server import create_server

pytestmark = pytest.mark.model


@dataclass
class Server:
    process: asyncio.subprocess.Process
    endpoint: str


async def _wait_ready(endpoint: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(600):
            try:
                if (await http.get(endpoint.removesuffix("/v1") + "/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)  # polling a starting process: there is no clock to inject
    raise AssertionError(f"llama-server at {endpoint} did not start")


@pytest.fixture
async def servers() -> AsyncIterator[list[Server]]:
    """Two llama-servers on the default model, with the `chat` server's arguments from models.yaml."""
    args = load_models_config(repo_root() / "config" / "models.yaml", os.environ).servers["chat"].args
    started: list[Server] = []
    for _ in range(2):
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            str(ensure_llama_server()), "-m", str(ensure_model()), "--host", "127.0.0.1", "--port", str(port), *args,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.STDOUT,
        )
        started.append(Server(process, f"http://127.0.0.1:{port}/v1"))
    try:
        for server in started:
            await _wait_ready(server.endpoint)
        yield started
    finally:
        for server in started:
            if server.process.returncode is None:
                server.process.terminate()
            await asyncio.wait_for(server.process.wait(), timeout=30)


async def model_calls(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, task_id: str) -> list[dict[str, Any]]:
    reply = await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task_id, page_size=1000))
    return [MessageToDict(event.data) for event in reply.events if event.type == common_pb2.EVENT_TYPE_MODEL_CALL]


async def test_a_task_sticks_to_its_server_and_moves_when_it_is_killed(tmp_path: Path, servers: list[Server]) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"roles": {"chat": {
        "endpoints": [server.endpoint for server in servers], "model": "SmolLM2-135M-Instruct", "max_tokens": 64,
        "max_reply_chars": 120, "connect_wait_seconds": 1,
    }}}))
    settings = Settings(address="127.0.0.1:0", database=tmp_path / "runtime.db", models_file=models, standalone=True,
                        max_steps=2, max_repairs=1)
    runtime = await create_server(settings)
    try:
        async with grpc.aio.insecure_channel(runtime.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            first = await stub.Chat(runtime_pb2.ChatRequest(message="What is the capital of France?"))
            task_id = first.task.id
            await stub.Chat(runtime_pb2.ChatRequest(message="And of Italy?", task_id=task_id))
            calls = await model_calls(stub, task_id)
            home = calls[0]["endpoint"]
            assert {call["endpoint"] for call in calls} == {home}
            assert not any("moved" in call for call in calls)
            # The second turn continued the first one's tokens on the same server.
            assert calls[-1]["prefix_tokens"] > 0
            assert calls[-1]["timings"]["cache_n"] >= calls[-1]["prefix_tokens"]

            killed = next(server for server in servers if server.endpoint == home)
            killed.process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(killed.process.wait(), timeout=30)
            before = len(calls)
            await stub.Chat(runtime_pb2.ChatRequest(message="And of Spain?", task_id=task_id))
            after = (await model_calls(stub, task_id))[before:]
            assert after, "the third turn made no model call"
            other = next(server.endpoint for server in servers if server.endpoint != home)
            assert {call["endpoint"] for call in after} == {other}
            assert after[0]["moved"].startswith(f"left {home}: "), after[0]
            assert "prefix_tokens" not in after[0]  # a fresh prefix on the other server
            # The runtime still serves: one of its model servers answers.
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await runtime.stop(grace=1.0)
