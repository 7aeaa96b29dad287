"""gRPC servicers of the tools process (ducklm.tools.v1 and ducklm.approvals.v1) and the factory
that wires the workspace, the policy, the approvals database and the server together.

The servicers only translate between protos and the domain; every decision is made in the
domain modules. Approve and Deny take who decided from the caller's approver credential
(services/common/auth.py), never from the request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.tools.v1 import tools_pb2, tools_pb2_grpc
from grpc_health.v1 import health_pb2

from services.common.auth import Approvers
from services.common.errors import InvalidArgument, grpc_errors
from services.common.paging import next_page_token, page_bounds
from services.common.protos import from_struct, to_struct, to_timestamp
from services.common.server import GrpcServer, ServiceBinding, build_server
from services.tools.approval_storage import open_approval_store
from services.tools.approvals import ApprovalBook
from services.tools.catalogue import Risk
from services.tools.config import Settings
from services.tools.executor import CommandLimits, ToolRunner
from services.tools.files import FileLimits, FileTools
from services.tools.mcp_connection import Backoff
from services.tools.mcp_tools import McpLimits, open_mcp_tools
from services.tools.policy import load_policy
from services.tools.sandbox import Sandbox, SandboxLimits, describe
from services.tools.store import ApprovalRecord
from services.tools.workspace import Workspace

__all__ = ["SANDBOX_HEALTH_NAME", "ApprovalsServicer", "ToolsServicer", "create_server"]

log = logging.getLogger(__name__)

# The gRPC health name that reports whether commands run in the sandbox.
SANDBOX_HEALTH_NAME = "ducklm.tools.v1.CommandSandbox"

_RISKS = {
    Risk.READ_ONLY: tools_pb2.RISK_LEVEL_READ_ONLY,
    Risk.WRITE: tools_pb2.RISK_LEVEL_WRITE,
    Risk.DANGEROUS: tools_pb2.RISK_LEVEL_DANGEROUS,
}
_STATES = {
    "PENDING": approvals_pb2.APPROVAL_STATE_PENDING,
    "APPROVED": approvals_pb2.APPROVAL_STATE_APPROVED,
    "DENIED": approvals_pb2.APPROVAL_STATE_DENIED,
    "USED": approvals_pb2.APPROVAL_STATE_USED,
    "EXPIRED": approvals_pb2.APPROVAL_STATE_EXPIRED,
}
_STATE_NAMES = {value: name for name, value in _STATES.items()}
_SCOPES = {
    "ONCE": approvals_pb2.APPROVAL_SCOPE_ONCE,
    "TASK": approvals_pb2.APPROVAL_SCOPE_TASK,
    "TASK_PATTERN": approvals_pb2.APPROVAL_SCOPE_TASK_PATTERN,
}
_SCOPE_NAMES = {
    approvals_pb2.APPROVAL_SCOPE_UNSPECIFIED: "ONCE",
    approvals_pb2.APPROVAL_SCOPE_ONCE: "ONCE",
    approvals_pb2.APPROVAL_SCOPE_TASK: "TASK",
    approvals_pb2.APPROVAL_SCOPE_TASK_PATTERN: "TASK_PATTERN",
}


def _approval_proto(record: ApprovalRecord) -> approvals_pb2.Approval:
    approval = approvals_pb2.Approval(
        id=record.id,
        task_id=record.task_id,
        tool_name=record.tool_name,
        arguments=to_struct(record.arguments),
        canonical_action=record.canonical_action,
        action_hash=record.action_hash,
        working_directory=record.working_directory,
        policy_version=record.policy_version,
        state=_STATES[record.state],
        scope=_SCOPES[record.scope],
        create_time=to_timestamp(_datetime(record.create_time)),
        decided_by=record.decided_by,
        reason=record.reason,
        pattern=record.pattern,
        pattern_hash=record.pattern_hash,
    )
    if record.decide_time is not None:
        approval.decide_time.CopyFrom(to_timestamp(_datetime(record.decide_time)))
    if record.expire_time is not None:
        approval.expire_time.CopyFrom(to_timestamp(_datetime(record.expire_time)))
    return approval


def _datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ToolsServicer(tools_pb2_grpc.ToolsServiceServicer):
    def __init__(self, runner: ToolRunner) -> None:
        self._runner = runner

    @grpc_errors
    async def ListTools(
        self,
        request: tools_pb2.ListToolsRequest,
        context: grpc.aio.ServicerContext[tools_pb2.ListToolsRequest, tools_pb2.ListToolsResponse],
    ) -> tools_pb2.ListToolsResponse:
        offset, limit = page_bounds(request.page_size, request.page_token)
        infos = self._runner.catalogue()[offset : offset + limit]
        tools = [
            tools_pb2.Tool(
                name=info.spec.name,
                description=info.description,
                arguments_schema=_schema_text(info.spec.schema),
                risk_level=_RISKS[info.spec.risk],
                requires_approval=info.requires_approval,
            )
            for info in infos
        ]
        return tools_pb2.ListToolsResponse(
            tools=tools,
            next_page_token=next_page_token(offset, limit, len(tools)),
            commands_sandboxed=self._runner.sandbox is not None,
        )

    @grpc_errors
    async def ExecuteTool(
        self,
        request: tools_pb2.ExecuteToolRequest,
        context: grpc.aio.ServicerContext[tools_pb2.ExecuteToolRequest, tools_pb2.ExecuteToolResponse],
    ) -> tools_pb2.ExecuteToolResponse:
        outcome = await self._runner.execute(
            request.tool_name, from_struct(request.arguments), request.task_id, request.approval_id
        )
        if outcome.approval_required is not None:
            return tools_pb2.ExecuteToolResponse(
                action_hash=outcome.action_hash,
                outcome=tools_pb2.EXECUTE_TOOL_OUTCOME_APPROVAL_REQUIRED,
                approval=_approval_proto(outcome.approval_required),
            )
        return tools_pb2.ExecuteToolResponse(
            result=to_struct(outcome.result),
            truncated=outcome.truncated,
            action_hash=outcome.action_hash,
            outcome=tools_pb2.EXECUTE_TOOL_OUTCOME_DONE,
        )


def _schema_text(schema: dict[str, object]) -> str:
    return json.dumps(schema, sort_keys=True)


class ApprovalsServicer(approvals_pb2_grpc.ApprovalsServiceServicer):
    def __init__(self, runner: ToolRunner, book: ApprovalBook, approvers: Approvers) -> None:
        self._runner = runner
        self._book = book
        self._approvers = approvers

    @grpc_errors
    async def RequestApproval(
        self,
        request: approvals_pb2.RequestApprovalRequest,
        context: grpc.aio.ServicerContext[approvals_pb2.RequestApprovalRequest, approvals_pb2.Approval],
    ) -> approvals_pb2.Approval:
        prepared = await self._runner.prepare(request.tool_name, from_struct(request.arguments))
        return _approval_proto(await self._book.request(prepared.action, request.task_id, prepared.pattern))

    @grpc_errors
    async def GetApproval(
        self,
        request: approvals_pb2.GetApprovalRequest,
        context: grpc.aio.ServicerContext[approvals_pb2.GetApprovalRequest, approvals_pb2.Approval],
    ) -> approvals_pb2.Approval:
        return _approval_proto(await self._book.get(request.approval_id))

    @grpc_errors
    async def ListApprovals(
        self,
        request: approvals_pb2.ListApprovalsRequest,
        context: grpc.aio.ServicerContext[approvals_pb2.ListApprovalsRequest, approvals_pb2.ListApprovalsResponse],
    ) -> approvals_pb2.ListApprovalsResponse:
        offset, limit = page_bounds(request.page_size, request.page_token)
        state = _STATE_NAMES.get(request.state, "")
        if request.state and not state:
            raise InvalidArgument(f"unknown approval state {request.state}")
        records = await self._book.page(state, request.task_id, offset, limit)
        return approvals_pb2.ListApprovalsResponse(
            approvals=[_approval_proto(record) for record in records],
            next_page_token=next_page_token(offset, limit, len(records)),
        )

    @grpc_errors
    async def Approve(
        self,
        request: approvals_pb2.ApproveRequest,
        context: grpc.aio.ServicerContext[approvals_pb2.ApproveRequest, approvals_pb2.Approval],
    ) -> approvals_pb2.Approval:
        decided_by = self._approvers.principal(context.invocation_metadata())
        scope = _SCOPE_NAMES.get(request.scope)
        if scope is None:
            raise InvalidArgument(f"unknown approval scope {request.scope}")
        record = await self._book.approve(
            request.approval_id,
            scope=scope,
            ttl_seconds=request.ttl_seconds,
            decided_by=decided_by,
            reason=request.reason,
            policy_version=self._runner.policy.version,
        )
        return _approval_proto(record)

    @grpc_errors
    async def Deny(
        self,
        request: approvals_pb2.DenyRequest,
        context: grpc.aio.ServicerContext[approvals_pb2.DenyRequest, approvals_pb2.Approval],
    ) -> approvals_pb2.Approval:
        decided_by = self._approvers.principal(context.invocation_metadata())
        record = await self._book.deny(request.approval_id, decided_by=decided_by, reason=request.reason)
        return _approval_proto(record)

    @grpc_errors
    async def WithdrawApproval(
        self,
        request: approvals_pb2.WithdrawApprovalRequest,
        context: grpc.aio.ServicerContext[approvals_pb2.WithdrawApprovalRequest, approvals_pb2.Approval],
    ) -> approvals_pb2.Approval:
        return _approval_proto(await self._book.withdraw(request.approval_id, reason=request.reason))

    @grpc_errors
    async def WatchApprovals(
        self,
        request: approvals_pb2.WatchApprovalsRequest,
        context: grpc.aio.ServicerContext[approvals_pb2.WatchApprovalsRequest, approvals_pb2.WatchApprovalsResponse],
    ) -> AsyncIterator[approvals_pb2.WatchApprovalsResponse]:
        async with self._book.feed.subscribe(request.task_id) as subscription:
            # The initial metadata tells the watcher it is subscribed: what it reads after this
            # covers every change from now on.
            await context.send_initial_metadata(())
            async for record in subscription.changes():
                yield approvals_pb2.WatchApprovalsResponse(approval=_approval_proto(record))

    @grpc_errors
    async def CheckApproval(
        self,
        request: approvals_pb2.CheckApprovalRequest,
        context: grpc.aio.ServicerContext[approvals_pb2.CheckApprovalRequest, approvals_pb2.CheckApprovalResponse],
    ) -> approvals_pb2.CheckApprovalResponse:
        prepared = await self._runner.prepare(request.tool_name, from_struct(request.arguments))
        allowed, reason = await self._book.check(
            request.approval_id, prepared.action, request.task_id, prepared.pattern
        )
        return approvals_pb2.CheckApprovalResponse(
            allowed=allowed, reason=reason, action_hash=prepared.action.hash
        )


async def create_server(settings: Settings, *, clock: Callable[[], float] = time.time) -> GrpcServer:
    """Opens the workspace, the policy and the approvals database, and starts both services.
    `clock` (Unix seconds) times the approvals; tests inject one to expire them without waiting."""
    approvers = Approvers(settings.approver_token)
    workspace = Workspace(settings.workspace_dir)
    # Blocking start-up file work (folder creation, policy read) runs in a thread.
    await asyncio.to_thread(workspace.ensure)
    policy = await asyncio.to_thread(load_policy, settings.policy_file)
    files = FileTools(
        workspace,
        FileLimits(
            max_file_bytes=settings.max_file_bytes,
            max_read_bytes=settings.max_read_bytes,
            max_list_entries=settings.max_list_entries,
            max_find_scanned=settings.max_find_scanned,
        ),
        policy.protected_paths,
    )
    sandbox = None
    if settings.sandbox:
        sandbox = Sandbox(
            files,
            policy,
            SandboxLimits(
                cpu_seconds=settings.command_cpu_seconds,
                memory_bytes=settings.command_memory_bytes,
                file_bytes=settings.command_file_bytes,
                processes=settings.command_processes,
                tmp_bytes=settings.command_tmp_bytes,
            ),
            settings.max_find_scanned,
        )
        problem = await sandbox.probe()
        if problem is not None:
            log.error("the command sandbox cannot be created (%s); run_command is refused", problem)
    else:
        log.warning(describe(False))
    mcp = await open_mcp_tools(
        settings.mcp_config_file,
        sandbox,
        McpLimits(settings.mcp_max_result_chars, Backoff(settings.mcp_restart_backoff_seconds), policy.search_path),
        policy.version,
    )
    store = await open_approval_store(settings)
    book = ApprovalBook(store, settings.approval_ttl_seconds, clock)
    try:
        runner = ToolRunner(
            policy,
            files,
            book,
            CommandLimits(settings.command_timeout_seconds, settings.max_output_bytes),
            sandbox,
            mcp,
        )
        server = await build_server(
            [
                ServiceBinding(
                    ToolsServicer(runner),
                    tools_pb2_grpc.add_ToolsServiceServicer_to_server,
                    tools_pb2.DESCRIPTOR.services_by_name["ToolsService"].full_name,
                ),
                ServiceBinding(
                    ApprovalsServicer(runner, book, approvers),
                    approvals_pb2_grpc.add_ApprovalsServiceServicer_to_server,
                    approvals_pb2.DESCRIPTOR.services_by_name["ApprovalsService"].full_name,
                ),
            ],
            settings.address,
        )
    except BaseException:
        await store.close()
        raise
    server.add_cleanup(store.close)
    server.closing.append(book.feed.close)
    await mcp.serve(server, settings.mcp_start_wait_seconds)
    # Health says whether commands are confined: SERVING with the sandbox, NOT_SERVING without
    # it (turned off, or it cannot be created).
    confined = sandbox is not None and sandbox.problem is None
    await server.health.set(
        SANDBOX_HEALTH_NAME,
        health_pb2.HealthCheckResponse.SERVING if confined else health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    return server
