"""The runtime and the tools service on a real PostgreSQL server, over real gRPC: tasks run and
survive a restart, two tools services share approvals (a single-use one is used once across
both), a DSN that cannot be reached stops the service with a message naming the host and the
cause, and a database lost mid-task gives UNAVAILABLE and the task resumes once it is back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from starlette.requests import Request
from starlette.responses import Response

from services.common.config import repo_root
from services.common.testing import free_port
from services.runtime.config import Settings
from services.runtime.server import create_server
from services.tools.config import Settings as ToolsSettings
from services.tools.server import create_server as create_tools
from tests.runtime.conftest import write_models_file
from tests.scripted_model import ScriptedModel
from tests.storage.postgres_server import PostgresServer
from tests.tools.support import APPROVER_TOKEN, DEFAULT_POLICY, ToolsClient


class GatedModel(ScriptedModel):
    """The scripted model, holding each answer until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.gate = asyncio.Event()

    async def _completions(self, request: Request) -> Response:
        self.asked.set()
        await self.gate.wait()
        return await super()._completions(request)


@pytest.fixture
async def model() -> AsyncIterator[ScriptedModel]:
    scripted = ScriptedModel()
    await scripted.start()
    yield scripted
    await scripted.stop()


def _runtime_settings(tmp_path: Path, model: ScriptedModel, dsn: str) -> Settings:
    return Settings(
        address="127.0.0.1:0",
        database=tmp_path / "unused.db",
        database_url=dsn,
        models_file=write_models_file(tmp_path / "models.yaml", model.endpoint),
        standalone=True,
        lease_seconds=1.5,
    )


async def test_tasks_run_on_postgres_and_survive_a_restart(tmp_path: Path, model: ScriptedModel,
                                                           postgres_dsn: str) -> None:
    model.script([{"action": "respond", "message": "hello from postgres"}])
    settings = _runtime_settings(tmp_path, model, postgres_dsn)
    server = await create_server(settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            reply = await stub.Chat(runtime_pb2.ChatRequest(message="hi"))
            assert reply.reply == "hello from postgres"
            assert reply.task.status == common_pb2.TASK_STATUS_COMPLETED
    finally:
        await server.stop(grace=1.0)
    assert not (tmp_path / "unused.db").exists()
    again = await create_server(settings)
    try:
        async with grpc.aio.insecure_channel(again.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            task = await stub.GetTask(runtime_pb2.GetTaskRequest(task_id=reply.task.id))
            assert task.last_reply == "hello from postgres" and task.steps == 1
            events = (await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task.id))).events
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
    finally:
        await again.stop(grace=1.0)


async def test_two_tools_services_share_approvals_and_a_single_use_one_is_used_once(
    tmp_path: Path, postgres_dsn: str
) -> None:
    replicas: list[ToolsClient] = []
    for name in ("a", "b"):
        settings = ToolsSettings(address="127.0.0.1:0", workspace_dir=tmp_path / "workspace",
                                 database_path=tmp_path / f"unused-{name}.db", database_url=postgres_dsn,
                                 policy_file=DEFAULT_POLICY, approver_token=APPROVER_TOKEN)
        server = await create_tools(settings)
        replicas.append(ToolsClient(server, grpc.aio.insecure_channel(server.address), tmp_path / "workspace"))
    a, b = replicas
    try:
        argv: dict[str, Any] = {"argv": ["touch", "once.txt"]}
        approval = await a.request_approval("run_command", argv)
        await b.approve(approval.id)
        replies = await asyncio.gather(
            *(replica.execute("run_command", argv, approval_id=approval.id) for replica in (a, b) * 4)
        )
        assert sum(reply.ok for reply in replies) == 1
        assert {reply.reason for reply in replies if not reply.ok} == {"APPROVAL_USED"}
    finally:
        for replica in replicas:
            await replica.stop()
    assert not any(tmp_path.glob("unused-*.db"))


@pytest.mark.parametrize("service", ["runtime", "tools"])
def test_an_unreachable_database_stops_the_service_naming_host_and_cause(service: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {**os.environ, f"DUCKLM_{service.upper()}_DATABASE_URL": f"postgresql://ducklm@127.0.0.1:{port}/tasks",
           f"DUCKLM_{service.upper()}_ADDRESS": "127.0.0.1:0", "DUCKLM_DATA_DIR": str(tmp_path),
           "DUCKLM_RUNTIME_STANDALONE": "true", "DUCKLM_TOOLS_SANDBOX": "false"}
    result = subprocess.run([sys.executable, "-m", f"services.{service}"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=repo_root(), check=False)
    assert result.returncode == 2, result.stderr
    assert f"cannot reach the database at 127.0.0.1:{port}/tasks" in result.stderr
    assert "refused" in result.stderr.lower()
    assert "Traceback" not in result.stderr


async def test_a_database_lost_mid_task_gives_unavailable_and_the_task_resumes_when_it_is_back(
    tmp_path: Path,
) -> None:
    database = PostgresServer()  # its own server: this test stops it
    database.start()
    model = GatedModel()
    await model.start()
    model.fallback = '{"action": "respond", "message": "answered after the outage"}'
    try:
        server = await create_server(_runtime_settings(tmp_path, model, database.create_database("outage")))
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
                chat = asyncio.ensure_future(stub.Chat(runtime_pb2.ChatRequest(message="hi")))
                await asyncio.wait_for(model.asked.wait(), 30)
                await asyncio.to_thread(database.stop, "fast")
                model.gate.set()  # the step's record now meets no database
                with pytest.raises(grpc.aio.AioRpcError) as lost:
                    await chat
                assert lost.value.code() is grpc.StatusCode.UNAVAILABLE
                assert "the database at 127.0.0.1" in (lost.value.details() or "")
                with pytest.raises(grpc.aio.AioRpcError) as listing:
                    await stub.ListTasks(runtime_pb2.ListTasksRequest())
                assert listing.value.code() is grpc.StatusCode.UNAVAILABLE
                await asyncio.to_thread(database.start)
                task = await _when_at_rest(stub)
                assert task.status == common_pb2.TASK_STATUS_COMPLETED, task
                assert task.last_reply == "answered after the outage"
                events = (await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task.id))).events
                types = [common_pb2.EventType.Name(e.type) for e in events]
                assert "EVENT_TYPE_TASK_RESUMED" in types and "EVENT_TYPE_ERROR" not in types
                assert types.count("EVENT_TYPE_MODEL_CALL") == 1  # the lost step left nothing behind
                assert [e.seq for e in events] == list(range(1, len(events) + 1))
        finally:
            await server.stop(grace=1.0)
    finally:
        await model.stop()
        database.stop("immediate")
        database.remove()


async def _when_at_rest(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub) -> runtime_pb2.Task:
    """The one task, once it has come to rest (the lease keeper retries every half second)."""
    for _ in range(300):
        tasks: list[runtime_pb2.Task] = []
        try:
            tasks = list((await stub.ListTasks(runtime_pb2.ListTasksRequest())).tasks)
        except grpc.aio.AioRpcError:
            pass
        if tasks and tasks[0].status != common_pb2.TASK_STATUS_RUNNING:
            return tasks[0]
        await asyncio.sleep(0.1)
    raise AssertionError("the task did not come to rest after the database came back")


async def test_a_task_stopped_by_a_shutdown_is_finished_by_the_next_runtime(tmp_path: Path, postgres_dsn: str) -> None:
    held = GatedModel()  # never answers: the task is mid-step when its runtime stops
    await held.start()
    first = await create_server(_runtime_settings(tmp_path, held, postgres_dsn))
    try:
        async with grpc.aio.insecure_channel(first.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            chat = asyncio.ensure_future(stub.Chat(runtime_pb2.ChatRequest(message="hi")))
            await asyncio.wait_for(held.asked.wait(), 30)
            await first.stop(grace=0)  # gives its leases up
            with pytest.raises(grpc.aio.AioRpcError):
                await chat
    finally:
        held.gate.set()
        await held.stop()
    answering = ScriptedModel(fallback='{"action": "respond", "message": "finished by the next one"}')
    await answering.start()
    (tmp_path / "second").mkdir()
    second = await create_server(_runtime_settings(tmp_path / "second", answering, postgres_dsn))
    try:
        async with grpc.aio.insecure_channel(second.address) as channel:
            task = await _when_at_rest(runtime_pb2_grpc.RuntimeServiceStub(channel))
        assert task.status == common_pb2.TASK_STATUS_COMPLETED and task.last_reply == "finished by the next one"
    finally:
        await second.stop(grace=1.0)
        await answering.stop()
