"""A peer that restarts is waited for; one that stays down fails the task naming it. The tools
service is stopped and started again on the same port, in-process, over real gRPC."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.server import GrpcServer
from services.common.testing import free_port
from services.runtime.config import Settings
from services.runtime.server import create_server as create_runtime
from services.tools.config import Settings as ToolsSettings
from services.tools.server import create_server as create_tools
from tests.runtime.conftest import Peers, write_models_file
from tests.scripted_model import ScriptedModel
from tests.tools.support import APPROVER_TOKEN, HUMAN
from tests.waits import until


def tools_settings(tmp_path: Path, port: int) -> ToolsSettings:
    return ToolsSettings(
        address=f"127.0.0.1:{port}", workspace_dir=tmp_path / "workspace", database_path=tmp_path / "tools.db",
        approver_token=APPROVER_TOKEN,
    )


def runtime_settings(tmp_path: Path, model: ScriptedModel, peers: Peers, tools_port: int, wait: float) -> Settings:
    return Settings(
        address="127.0.0.1:0",
        database=tmp_path / "runtime.db",
        models_file=write_models_file(tmp_path / "models.yaml", model.endpoint),
        tools_address=f"127.0.0.1:{tools_port}",
        skills_address=peers.skills.address,
        memory_address=peers.memory_address,
        approval_retry_seconds=0.05,
        peer_wait_seconds=wait,
        recall_top_k=0,
    )


async def test_a_turn_waits_for_a_restarting_tools_service(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers
) -> None:
    port = free_port()
    tools: GrpcServer = await create_tools(tools_settings(tmp_path, port))
    runtime = await create_runtime(runtime_settings(tmp_path, scripted_model, peers, port, wait=30.0))
    scripted_model.script([
        {"action": "call_tool", "tool": "list_dir", "arguments": {"path": "."}},
        {"action": "finish", "message": "listed"},
    ])
    try:
        async with grpc.aio.insecure_channel(runtime.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            await stub.Chat(runtime_pb2.ChatRequest(message="warm up"))  # the channel is connected
            await tools.stop(grace=0.1)
            scripted_model.script([
                {"action": "call_tool", "tool": "list_dir", "arguments": {"path": "."}},
                {"action": "finish", "message": "listed"},
            ])
            async def list_it() -> runtime_pb2.ChatResponse:
                answer: runtime_pb2.ChatResponse = await stub.Chat(runtime_pb2.ChatRequest(message="list it"))
                return answer

            chat = asyncio.create_task(list_it())

            async def running() -> bool:
                # The warm-up task has completed: a running task is this turn, and the first thing
                # it does (listing the tools) needs the stopped tools service.
                found = await stub.ListTasks(runtime_pb2.ListTasksRequest(status=common_pb2.TASK_STATUS_RUNNING))
                return bool(found.tasks)

            await until(running, "the turn to start and wait for the stopped tools service")
            assert not chat.done()
            tools = await create_tools(tools_settings(tmp_path, port))
            reply = await chat
            assert reply.task.status == common_pb2.TASK_STATUS_COMPLETED, reply.task.error
            assert reply.reply == "listed"
    finally:
        await runtime.stop(grace=1.0)
        await tools.stop(grace=1.0)


async def test_a_tools_service_down_past_the_bound_fails_the_task_naming_it(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers
) -> None:
    port = free_port()  # nothing ever listens here
    runtime = await create_runtime(runtime_settings(tmp_path, scripted_model, peers, port, wait=0.3))
    try:
        async with grpc.aio.insecure_channel(runtime.address) as channel:
            reply = await runtime_pb2_grpc.RuntimeServiceStub(channel).Chat(runtime_pb2.ChatRequest(message="hi"))
    finally:
        await runtime.stop(grace=1.0)
    assert reply.task.status == common_pb2.TASK_STATUS_FAILED
    assert "tools service" in reply.task.error and "did not answer for 0.3 s" in reply.task.error


async def test_an_approval_given_across_a_tools_restart_resumes_the_waiting_task(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers
) -> None:
    port = free_port()
    tools: GrpcServer = await create_tools(tools_settings(tmp_path, port))
    runtime = await create_runtime(runtime_settings(tmp_path, scripted_model, peers, port, wait=30.0))
    scripted_model.script([
        {"action": "call_tool", "tool": "write_file", "arguments": {"path": "a.txt", "content": "A"}},
        {"action": "finish", "message": "written"},
    ])
    try:
        async with grpc.aio.insecure_channel(runtime.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            waiting = (await stub.Chat(runtime_pb2.ChatRequest(message="write it"))).task
            assert waiting.status == common_pb2.TASK_STATUS_WAITING_APPROVAL
            # The stream the runtime watched ends with the service; the approval outlives it.
            await tools.stop(grace=0.1)
            tools = await create_tools(tools_settings(tmp_path, port))
            async with grpc.aio.insecure_channel(tools.address) as tools_channel:
                await approvals_pb2_grpc.ApprovalsServiceStub(tools_channel).Approve(
                    approvals_pb2.ApproveRequest(approval_id=waiting.pending_approval_id), metadata=HUMAN
                )

            async def completed() -> runtime_pb2.Task | None:
                task = await stub.GetTask(runtime_pb2.GetTaskRequest(task_id=waiting.id))
                return task if task.status == common_pb2.TASK_STATUS_COMPLETED else None

            await until(completed, "the approved task to complete")
        assert (tmp_path / "workspace" / "a.txt").read_text() == "A"
    finally:
        await runtime.stop(grace=1.0)
        await tools.stop(grace=1.0)
