"""The runtime's clients for its peer services (tools, approvals, skills, memory).

Each wraps a gRPC stub and speaks plain dataclasses and dicts to the loop, so the loop can run
against recorded results in a replay. gRPC failures become `PeerError` with the status code.

A peer that restarts is waited for: calls to the tools and skills services first wait (at most
`wait_seconds`) for the channel to be ready, and idempotent calls are retried on UNAVAILABLE by
the channel's service config. A call that cannot be repeated safely (ExecuteTool, approvals,
Remember, RecordExperience) is never retried; an ExecuteTool the peer dropped mid-run is reported
as interrupted, never repeated. Memory is best effort and is not waited for.

A gated call that no approval covers comes back from ExecuteTool as a `ToolOutcome` carrying the
pending approval the tools service created for it; `watch_approvals` then streams the changes to
approvals (WatchApprovals) until the stream drops, and the caller reconnects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc
from ducklm.tools.v1 import tools_pb2, tools_pb2_grpc
from google.protobuf import json_format

from services.common.channels import open_channel
from services.common.protos import from_struct, to_struct, to_timestamp
from services.runtime.records import ExperienceRecord
from services.runtime.workspace_entries import WorkspaceEntry, workspace_entries

__all__ = [
    "ApprovalInfo",
    "GrpcPeers",
    "PeerError",
    "Peers",
    "RecalledMemory",
    "SkillSummary",
    "ToolSpec",
    "WorkspaceEntry",
    "workspace_entries",
]


class PeerError(Exception):
    """A peer service refused or failed a call."""

    def __init__(self, service: str, code: str, message: str, reason: str = "") -> None:
        super().__init__(f"{service}: {code}: {message}")
        self.service = service
        self.code = code
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    arguments_schema: dict[str, Any]
    read_only: bool
    requires_approval: bool


@dataclass(frozen=True)
class ApprovalInfo:
    id: str
    # "pending", "approved", "denied", "used", "expired"
    state: str
    action_hash: str
    reason: str = ""
    decided_by: str = ""
    task_id: str = ""


@dataclass(frozen=True)
class SkillSummary:
    name: str
    description: str
    allowed_tools: tuple[str, ...] = ()
    body: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # `allowed_tools` as DuckLM tool names (the skills service maps Claude Code's names).
    pre_approved_tools: tuple[str, ...] = ()
    # The skill's other files (relative paths), for `read_skill_file`.
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecalledMemory:
    id: str
    text: str
    score: float
    # "task" (this conversation's) or "long_term"; automatic recall reads no other scope.
    scope: str = ""


@dataclass
class ToolOutcome:
    """How one ExecuteTool ended: it ran (`ok`, `result`), it failed (`error`, `code`, `reason`),
    or, with `approval_required`, nothing ran and the call waits on that pending approval."""

    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    code: str = ""
    reason: str = ""
    approval_required: ApprovalInfo | None = None


class Peers(Protocol):
    """What the loop needs from the other services."""

    async def list_tools(self) -> list[ToolSpec]: ...
    async def execute_tool(self, task_id: str, tool: str, arguments: dict[str, Any], approval_id: str = "") -> ToolOutcome: ...
    async def get_approval(self, approval_id: str) -> ApprovalInfo: ...
    # Returns once the tools service watches for this caller; iterating yields each approval
    # change from then on, and raises PeerError when the stream drops.
    async def watch_approvals(self) -> AsyncGenerator[ApprovalInfo, None]: ...
    async def deny_approval(self, approval_id: str, reason: str) -> None: ...
    async def list_skills(self) -> list[SkillSummary]: ...
    async def get_skill(self, name: str) -> SkillSummary: ...
    async def read_skill_file(self, name: str, path: str) -> bytes: ...
    async def remember(self, task_id: str, text: str, kind: str) -> str: ...
    async def recall(self, query: str, top_k: int, task_id: str = "") -> list[RecalledMemory]: ...
    async def record_experience(self, experience: ExperienceRecord) -> str: ...
    async def propose_skill(self, skill_md: str, experience_ids: list[str], event_refs: list[str], rationale: str) -> str: ...
    async def list_experiences(self, ids: list[str], limit: int) -> list[dict[str, Any]]: ...
    async def list_workspace(self, task_id: str) -> list[WorkspaceEntry]: ...


T = TypeVar("T")

# Calls that may be repeated without changing anything: only these are retried.
_IDEMPOTENT = {
    "tools": [
        f"{tools_pb2.DESCRIPTOR.services_by_name['ToolsService'].full_name}/ListTools",
        f"{approvals_pb2.DESCRIPTOR.services_by_name['ApprovalsService'].full_name}/GetApproval",
        f"{approvals_pb2.DESCRIPTOR.services_by_name['ApprovalsService'].full_name}/ListApprovals",
    ],
    "skills": [
        f"{skills_pb2.DESCRIPTOR.services_by_name['SkillsService'].full_name}/{method}"
        for method in ("ListSkills", "GetSkill", "ListExperiences")
    ],
    "memory": [f"{memory_pb2.DESCRIPTOR.services_by_name['MemoryService'].full_name}/Search"],
}
INTERRUPTED = (
    "the tools service stopped while this call ran; it was not repeated, and it may or may not have taken "
    "effect. Check before calling it again."
)


def _reason(error: grpc.aio.AioRpcError) -> str:
    for key, value in error.initial_metadata() or ():
        if key == "ducklm-error-reason":
            return str(value)
    return ""


def _peer_error(service: str, error: grpc.aio.AioRpcError) -> PeerError:
    return PeerError(service, error.code().name, error.details() or error.code().name, _reason(error))


_APPROVAL_STATES = {
    approvals_pb2.APPROVAL_STATE_PENDING: "pending",
    approvals_pb2.APPROVAL_STATE_APPROVED: "approved",
    approvals_pb2.APPROVAL_STATE_DENIED: "denied",
    approvals_pb2.APPROVAL_STATE_USED: "used",
    approvals_pb2.APPROVAL_STATE_EXPIRED: "expired",
}


def _approval(message: approvals_pb2.Approval) -> ApprovalInfo:
    return ApprovalInfo(
        id=message.id,
        state=_APPROVAL_STATES.get(message.state, "unknown"),
        action_hash=message.action_hash,
        reason=message.reason,
        decided_by=message.decided_by,
        task_id=message.task_id,
    )


async def _changes(
    call: grpc.aio.UnaryStreamCall[approvals_pb2.WatchApprovalsRequest, approvals_pb2.WatchApprovalsResponse],
) -> AsyncGenerator[ApprovalInfo, None]:
    """The stream's approvals; its failure (or its end: the server stopped) becomes PeerError."""
    try:
        async for change in call:
            yield _approval(change.approval)
    except grpc.aio.AioRpcError as exc:
        raise _peer_error("approvals", exc) from exc
    finally:
        call.cancel()
    raise PeerError("approvals", "UNAVAILABLE", "the approvals stream ended")


class GrpcPeers:
    """Peers reached over gRPC; every call has a deadline."""

    def __init__(self, *, tools_address: str, skills_address: str, memory_address: str, timeout: float = 30.0,
                 tool_timeout: float = 300.0, wait_seconds: float = 15.0) -> None:
        addresses = {"tools": tools_address, "skills": skills_address, "memory": memory_address}
        self._channels = {
            name: open_channel(address, idempotent_services=_IDEMPOTENT[name]) for name, address in addresses.items()
        }
        self._wait = wait_seconds
        self._tools = tools_pb2_grpc.ToolsServiceStub(self._channels["tools"])
        self._approvals = approvals_pb2_grpc.ApprovalsServiceStub(self._channels["tools"])
        self._skills = skills_pb2_grpc.SkillsServiceStub(self._channels["skills"])
        self._memory = memory_pb2_grpc.MemoryServiceStub(self._channels["memory"])
        self._timeout = timeout
        self._tool_timeout = tool_timeout

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def _ready(self, channel: str, service: str) -> None:
        """Waits until the peer answers again, at most `wait_seconds`; then fails naming it."""
        connection = self._channels[channel]
        if connection.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY:
            return
        try:
            await asyncio.wait_for(connection.channel_ready(), self._wait)
        except TimeoutError:
            raise PeerError(
                service, "UNAVAILABLE", f"the {service} service did not answer for {self._wait:g} s"
            ) from None

    async def _call(
        self, channel: str, service: str, rpc: Callable[..., Awaitable[T]], request: Any, *,
        timeout: float | None = None,
    ) -> T:
        """One call to a peer: waits for a restarting tools/skills service first (memory is
        best effort: it is not waited for); gRPC failures become PeerError naming `service`."""
        wait = channel != "memory"
        if wait:
            await self._ready(channel, service)
        try:
            return await rpc(request, timeout=timeout or self._timeout, wait_for_ready=wait)
        except grpc.aio.AioRpcError as exc:
            raise _peer_error(service, exc) from exc

    async def list_tools(self) -> list[ToolSpec]:
        reply = await self._call(
            "tools", "tools", self._tools.ListTools, tools_pb2.ListToolsRequest(page_size=500)
        )
        return [
            ToolSpec(
                name=tool.name,
                description=tool.description,
                arguments_schema=json.loads(tool.arguments_schema or "{}"),
                read_only=tool.risk_level == tools_pb2.RISK_LEVEL_READ_ONLY,
                requires_approval=tool.requires_approval,
            )
            for tool in reply.tools
        ]

    async def execute_tool(
        self, task_id: str, tool: str, arguments: dict[str, Any], approval_id: str = ""
    ) -> ToolOutcome:
        request = tools_pb2.ExecuteToolRequest(
            tool_name=tool, arguments=to_struct(arguments), task_id=task_id, approval_id=approval_id
        )
        await self._ready("tools", "tools")
        try:
            reply = await self._tools.ExecuteTool(request, timeout=self._tool_timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.UNAVAILABLE:
                # Sent, then the peer went away (an unsent call waits for ready instead): it may
                # have run. Reported as interrupted, never repeated.
                return ToolOutcome(ok=False, error=INTERRUPTED, code=exc.code().name, reason="INTERRUPTED")
            return ToolOutcome(ok=False, error=exc.details() or exc.code().name, code=exc.code().name, reason=_reason(exc))
        if reply.outcome == tools_pb2.EXECUTE_TOOL_OUTCOME_APPROVAL_REQUIRED:
            return ToolOutcome(ok=False, code="APPROVAL_REQUIRED", reason="APPROVAL_REQUIRED",
                               approval_required=_approval(reply.approval))
        result = from_struct(reply.result)
        if reply.truncated:
            result.setdefault("truncated", True)
        return ToolOutcome(ok=True, result=result)

    async def watch_approvals(self) -> AsyncGenerator[ApprovalInfo, None]:
        """Subscribes to every approval change (no deadline: the stream lasts until it drops)."""
        await self._ready("tools", "approvals")
        call = self._approvals.WatchApprovals(approvals_pb2.WatchApprovalsRequest(), wait_for_ready=True)
        try:
            # The server sends its initial metadata once it is subscribed (or its error status).
            await call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            call.cancel()
            raise _peer_error("approvals", exc) from exc
        return _changes(call)

    async def get_approval(self, approval_id: str) -> ApprovalInfo:
        reply = await self._call(
            "tools", "approvals", self._approvals.GetApproval, approvals_pb2.GetApprovalRequest(approval_id=approval_id)
        )
        return _approval(reply)

    async def deny_approval(self, approval_id: str, reason: str) -> None:
        # Withdraws the runtime's own request: only a human (the approver credential) may Deny.
        request = approvals_pb2.WithdrawApprovalRequest(approval_id=approval_id, reason=reason)
        await self._call("tools", "approvals", self._approvals.WithdrawApproval, request)

    async def list_skills(self) -> list[SkillSummary]:
        reply = await self._call(
            "skills", "skills", self._skills.ListSkills, skills_pb2.ListSkillsRequest(page_size=500)
        )
        return [
            SkillSummary(
                name=s.name, description=s.description, allowed_tools=tuple(s.allowed_tools),
                pre_approved_tools=tuple(s.pre_approved_tools),
            )
            for s in reply.skills
        ]

    async def get_skill(self, name: str) -> SkillSummary:
        skill = await self._call(
            "skills", "skills", self._skills.GetSkill, skills_pb2.GetSkillRequest(name=name)
        )
        return SkillSummary(
            name=skill.name, description=skill.description, allowed_tools=tuple(skill.allowed_tools), body=skill.body,
            metadata=dict(skill.metadata), pre_approved_tools=tuple(skill.pre_approved_tools), files=tuple(skill.files),
        )

    async def read_skill_file(self, name: str, path: str) -> bytes:
        """One file inside the skill's folder, confined there by the skills service."""
        try:
            reply = await self._skills.GetSkillFile(
                skills_pb2.GetSkillFileRequest(name=name, path=path), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("skills", exc) from exc
        return bytes(reply.content)

    async def remember(self, task_id: str, text: str, kind: str) -> str:
        """Stores in the task's own scope: only a person promotes a memory to long-term."""
        request = memory_pb2.RememberRequest(text=text, task_id=task_id, kind=kind, scope=memory_pb2.MEMORY_SCOPE_TASK)
        memory = await self._call("memory", "memory", self._memory.Remember, request)
        return str(memory.id)

    async def recall(self, query: str, top_k: int, task_id: str = "") -> list[RecalledMemory]:
        """The long-term memories and this task's own, above the memory service's threshold."""
        request = memory_pb2.RecallRequest(text=query, task_id=task_id, top_k=top_k)
        reply = await self._call("memory", "memory", self._memory.Recall, request)
        scopes = {memory_pb2.MEMORY_SCOPE_TASK: "task", memory_pb2.MEMORY_SCOPE_LONG_TERM: "long_term"}
        return [
            RecalledMemory(id=r.memory.id, text=r.memory.text, score=r.score, scope=scopes.get(r.memory.scope, ""))
            for r in reply.results
        ]

    async def record_experience(self, experience: ExperienceRecord) -> str:
        fields = {item.name: getattr(experience, item.name) for item in dataclasses.fields(experience)}
        fields.update(outcome=f"OUTCOME_{experience.outcome.upper()}", create_time=to_timestamp(experience.create_time))
        message = skills_pb2.Experience(**fields)
        reply = await self._call(
            "skills", "skills", self._skills.RecordExperience, skills_pb2.RecordExperienceRequest(experience=message)
        )
        return str(reply.id)

    async def propose_skill(self, skill_md: str, experience_ids: list[str], event_refs: list[str], rationale: str) -> str:
        request = skills_pb2.ProposeSkillRequest(
            skill_md=skill_md, experience_ids=experience_ids, event_refs=event_refs, rationale=rationale
        )
        reply = await self._call("skills", "skills", self._skills.ProposeSkill, request)
        return str(reply.id)

    async def list_experiences(self, ids: list[str], limit: int) -> list[dict[str, Any]]:
        """The experiences with these ids (looked for among the newest 500), or else the newest `limit`."""
        page_size = 500 if ids else max(limit, 1)
        reply = await self._call(
            "skills", "skills", self._skills.ListExperiences, skills_pb2.ListExperiencesRequest(page_size=page_size)
        )
        experiences = [json_format.MessageToDict(e, preserving_proto_field_name=True) for e in reply.experiences]
        if ids:
            wanted = set(ids)
            experiences = [e for e in experiences if e.get("id") in wanted]
        return experiences

    async def list_workspace(self, task_id: str) -> list[WorkspaceEntry]:
        """Every workspace path, through the tools service's own (confined) find_files."""
        outcome = await self.execute_tool(task_id, "find_files", {"pattern": "**"})
        if not outcome.ok:
            raise PeerError("tools", outcome.code or "UNKNOWN", outcome.error or "the workspace could not be listed")
        return workspace_entries([str(match) for match in outcome.result.get("matches", [])])
