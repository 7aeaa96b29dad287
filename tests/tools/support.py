"""Helpers for the tools service tests: a small client over a real channel that turns replies and
errors into plain values, and test policies built on the shipped one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.tools.v1 import tools_pb2, tools_pb2_grpc

from services.common.auth import approver_metadata
from services.common.config import repo_root
from services.common.protos import from_struct, to_struct
from services.common.server import GrpcServer

SECRET = "TOP SECRET: never shown to a tool"
# The approver credential the test servers are given (the human's side holds it; the runtime never).
APPROVER_TOKEN = "approver-test-token-0123456789"
HUMAN = approver_metadata(APPROVER_TOKEN, "test")
DEFAULT_POLICY = repo_root() / "config" / "tools.yaml"


@dataclass
class Reply:
    """An ExecuteTool (or other) outcome: the result; the status code, reason and message; or, with
    code and reason APPROVAL_REQUIRED, the pending approval the call now waits on (nothing ran)."""

    code: str = "OK"
    reason: str = ""
    details: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False
    action_hash: str = ""
    approval: approvals_pb2.Approval | None = None

    @property
    def ok(self) -> bool:
        return self.code == "OK"


def error_reply(exc: grpc.aio.AioRpcError) -> Reply:
    metadata = dict(exc.initial_metadata() or ())
    return Reply(
        code=exc.code().name, reason=str(metadata.get("ducklm-error-reason", "")), details=exc.details() or ""
    )


class ToolsClient:
    """Talks to one running tools server over a real channel."""

    def __init__(self, server: GrpcServer, channel: grpc.aio.Channel, workspace: Path) -> None:
        self.server = server
        self.channel = channel
        self.workspace = workspace
        self.tools = tools_pb2_grpc.ToolsServiceStub(channel)
        self.approvals = approvals_pb2_grpc.ApprovalsServiceStub(channel)
        self.stopped = False

    async def stop(self) -> None:
        """Stops the server (as a restart would); safe to call twice."""
        if not self.stopped:
            self.stopped = True
            await self.channel.close()
            await self.server.stop(0)

    async def execute(
        self, tool: str, arguments: dict[str, Any], *, task_id: str = "task-1", approval_id: str = ""
    ) -> Reply:
        request = tools_pb2.ExecuteToolRequest(
            tool_name=tool, arguments=to_struct(arguments), task_id=task_id, approval_id=approval_id
        )
        try:
            response = await self.tools.ExecuteTool(request, timeout=60)
        except grpc.aio.AioRpcError as exc:
            return error_reply(exc)
        if response.outcome == tools_pb2.EXECUTE_TOOL_OUTCOME_APPROVAL_REQUIRED:
            assert response.HasField("approval") and not response.result.fields, response
            return Reply(
                code="APPROVAL_REQUIRED",
                reason="APPROVAL_REQUIRED",
                action_hash=response.action_hash,
                approval=response.approval,
            )
        assert response.outcome == tools_pb2.EXECUTE_TOOL_OUTCOME_DONE, response
        return Reply(
            result=from_struct(response.result),
            truncated=response.truncated,
            action_hash=response.action_hash,
        )

    async def request_approval(
        self, tool: str, arguments: dict[str, Any], *, task_id: str = "task-1"
    ) -> approvals_pb2.Approval:
        request = approvals_pb2.RequestApprovalRequest(
            task_id=task_id, tool_name=tool, arguments=to_struct(arguments)
        )
        approval: approvals_pb2.Approval = await self.approvals.RequestApproval(request)
        return approval

    async def approve(self, approval_id: str, **fields: Any) -> approvals_pb2.Approval:
        """Approves as the human (with the approver credential)."""
        approval: approvals_pb2.Approval = await self.approvals.Approve(
            approvals_pb2.ApproveRequest(approval_id=approval_id, **fields), metadata=HUMAN
        )
        return approval

    async def deny(self, approval_id: str, reason: str = "") -> approvals_pb2.Approval:
        """Denies as the human (with the approver credential)."""
        approval: approvals_pb2.Approval = await self.approvals.Deny(
            approvals_pb2.DenyRequest(approval_id=approval_id, reason=reason), metadata=HUMAN
        )
        return approval

    async def execute_approved(
        self, tool: str, arguments: dict[str, Any], *, task_id: str = "task-1", **approve_fields: Any
    ) -> Reply:
        """Asks for an approval, grants it, and runs the call with it; a refused request is the reply."""
        try:
            approval = await self.request_approval(tool, arguments, task_id=task_id)
            await self.approve(approval.id, **approve_fields)
        except grpc.aio.AioRpcError as exc:
            return error_reply(exc)
        return await self.execute(tool, arguments, task_id=task_id, approval_id=approval.id)


def write_policy(path: Path, extra_commands: dict[str, Any] | None = None, **overrides: Any) -> Path:
    """The default policy plus test-only programs and overrides, written to `path`."""
    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    policy["commands"].update(extra_commands or {})
    policy.update(overrides)
    path.write_text(yaml.safe_dump(policy))
    return path


StartTools = Callable[..., Awaitable[ToolsClient]]


def clear_folder(folder: Path) -> None:
    """Removes everything in `folder` (links, FIFOs, odd names included) but the folder itself."""
    for name in os.listdir(os.fsencode(folder)):
        path = os.path.join(os.fsencode(folder), name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
