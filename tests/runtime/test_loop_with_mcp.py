"""The loop calling an MCP tool: the real tools service (in-process, real gRPC) with the probe
MCP server of tests/tools behind it, and a scripted model choosing `probe.echo`. The tool is
offered to the model by its namespaced name and schema, waits for a human approval like any
gated tool, and its result reaches the task."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.config import repo_root
from services.common.server import GrpcServer
from services.common.testing import free_port
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.server import create_server as create_runtime
from services.skills.config import Settings as SkillsSettings
from services.skills.server import create_server as create_skills
from services.tools.config import Settings as ToolsSettings
from services.tools.server import create_server as create_tools
from tests.runtime.conftest import write_models_file
from tests.runtime.test_loop_with_peers import events_of, wait_for_status
from tests.scripted_model import ScriptedModel
from tests.tools.mcp_support import calls, probe_server, write_mcp_config
from tests.tools.support import APPROVER_TOKEN, HUMAN


@pytest.fixture
async def runtime_with_mcp(tmp_path: Path, scripted_model: ScriptedModel) -> AsyncIterator[tuple[GrpcServer, GrpcServer]]:
    config = write_mcp_config(tmp_path / "mcp.yaml", {"probe": probe_server(tmp_path / "state")})
    tools = await create_tools(
        ToolsSettings(
            address="127.0.0.1:0",
            workspace_dir=tmp_path / "workspace",
            database_path=tmp_path / "tools.db",
            approver_token=APPROVER_TOKEN,
            mcp_config_file=config,
        )
    )
    skills_dir = tmp_path / "skills"
    shutil.copytree(repo_root() / "skills", skills_dir)
    skills = await create_skills(
        SkillsSettings(address="127.0.0.1:0", skills_dir=skills_dir, database=tmp_path / "skills.db",
                       proposals_dir=tmp_path / "proposals", rescan_interval=0)
    )
    runtime = await create_runtime(
        RuntimeSettings(
            address="127.0.0.1:0",
            database=tmp_path / "runtime.db",
            models_file=write_models_file(tmp_path / "models.yaml", scripted_model.endpoint),
            tools_address=tools.address,
            skills_address=skills.address,
            memory_address=f"127.0.0.1:{free_port()}",
            approval_retry_seconds=0.05,
            max_steps=6,
        )
    )
    try:
        yield runtime, tools
    finally:
        await runtime.stop(grace=1.0)
        await tools.stop(grace=1.0)
        await skills.stop(grace=1.0)


async def test_an_mcp_tool_call_waits_for_approval_then_its_result_reaches_the_task(
    runtime_with_mcp: tuple[GrpcServer, GrpcServer], scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    runtime, tools = runtime_with_mcp
    scripted_model.script([
        {"action": "call_tool", "tool": "probe.echo", "arguments": {"text": "quack"}},
        {"action": "finish", "message": "The probe said quack."},
    ])
    async with grpc.aio.insecure_channel(runtime.address) as channel, grpc.aio.insecure_channel(tools.address) as tc:
        stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
        approvals = approvals_pb2_grpc.ApprovalsServiceStub(tc)
        reply = await stub.Chat(runtime_pb2.ChatRequest(message="Ask the probe to echo quack"))
        assert reply.task.status == common_pb2.TASK_STATUS_WAITING_APPROVAL
        # The model was offered the MCP tool by name, with its listed schema.
        offered = json.dumps(scripted_model.requests[0])
        assert "probe.echo" in offered
        assert calls(tmp_path / "state") == []
        approval = await approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=reply.task.pending_approval_id))
        assert approval.tool_name == "probe.echo"
        await approvals.Approve(approvals_pb2.ApproveRequest(approval_id=approval.id), metadata=HUMAN)
        task = await wait_for_status(stub, reply.task.id, common_pb2.TASK_STATUS_COMPLETED)
        assert task.last_reply == "The probe said quack."
        result = next(data for kind, data in await events_of(stub, task.id) if kind == "tool_result")
    assert result["ok"] is True
    assert "quack" in str(result["result"])
    assert calls(tmp_path / "state") == ["echo quack"]
