"""The runtime's clients for its peer services (tools, approvals, skills, memory).

Each wraps a gRPC stub and speaks plain dataclasses and dicts to the loop, so the loop can run
against recorded results in a replay. gRPC failures become `PeerError` with the status code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc
from ducklm.tools.v1 import tools_pb2, tools_pb2_grpc
from google.protobuf import json_format

from services.common.channels import open_channel
from services.common.protos import from_struct, to_struct

__all__ = [
    "ApprovalInfo",
    "GrpcPeers",
    "PeerError",
    "Peers",
    "RecalledMemory",
    "SkillSummary",
    "ToolSpec",
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


@dataclass
class ToolOutcome:
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    code: str = ""
    reason: str = ""


class Peers(Protocol):
    """What the loop needs from the other services."""

    async def list_tools(self) -> list[ToolSpec]: ...
    async def execute_tool(self, task_id: str, tool: str, arguments: dict[str, Any], approval_id: str = "") -> ToolOutcome: ...
    async def request_approval(self, task_id: str, tool: str, arguments: dict[str, Any]) -> ApprovalInfo: ...
    async def get_approval(self, approval_id: str) -> ApprovalInfo: ...
    async def deny_approval(self, approval_id: str, reason: str) -> None: ...
    async def list_skills(self) -> list[SkillSummary]: ...
    async def get_skill(self, name: str) -> SkillSummary: ...
    async def read_skill_file(self, name: str, path: str) -> bytes: ...
    async def remember(self, task_id: str, text: str, kind: str) -> str: ...
    async def recall(self, query: str, top_k: int) -> list[RecalledMemory]: ...
    async def record_experience(self, experience: dict[str, Any]) -> str: ...
    async def propose_skill(self, skill_md: str, experience_ids: list[str], event_refs: list[str], rationale: str) -> str: ...
    async def list_experiences(self, ids: list[str], limit: int) -> list[dict[str, Any]]: ...


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
    )


class GrpcPeers:
    """Peers reached over gRPC; every call has a deadline."""

    def __init__(self, *, tools_address: str, skills_address: str, memory_address: str, timeout: float = 30.0,
                 tool_timeout: float = 300.0) -> None:
        self._channels = {
            "tools": open_channel(tools_address),
            "skills": open_channel(skills_address),
            "memory": open_channel(memory_address),
        }
        self._tools = tools_pb2_grpc.ToolsServiceStub(self._channels["tools"])
        self._approvals = approvals_pb2_grpc.ApprovalsServiceStub(self._channels["tools"])
        self._skills = skills_pb2_grpc.SkillsServiceStub(self._channels["skills"])
        self._memory = memory_pb2_grpc.MemoryServiceStub(self._channels["memory"])
        self._timeout = timeout
        self._tool_timeout = tool_timeout

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def list_tools(self) -> list[ToolSpec]:
        try:
            reply = await self._tools.ListTools(tools_pb2.ListToolsRequest(page_size=500), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("tools", exc) from exc
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
        try:
            reply = await self._tools.ExecuteTool(request, timeout=self._tool_timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.UNAVAILABLE:
                raise _peer_error("tools", exc) from exc
            return ToolOutcome(ok=False, error=exc.details() or exc.code().name, code=exc.code().name, reason=_reason(exc))
        result = from_struct(reply.result)
        if reply.truncated:
            result.setdefault("truncated", True)
        return ToolOutcome(ok=True, result=result)

    async def request_approval(self, task_id: str, tool: str, arguments: dict[str, Any]) -> ApprovalInfo:
        request = approvals_pb2.RequestApprovalRequest(task_id=task_id, tool_name=tool, arguments=to_struct(arguments))
        try:
            return _approval(await self._approvals.RequestApproval(request, timeout=self._timeout))
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("approvals", exc) from exc

    async def get_approval(self, approval_id: str) -> ApprovalInfo:
        try:
            reply = await self._approvals.GetApproval(
                approvals_pb2.GetApprovalRequest(approval_id=approval_id), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("approvals", exc) from exc
        return _approval(reply)

    async def deny_approval(self, approval_id: str, reason: str) -> None:
        request = approvals_pb2.DenyRequest(approval_id=approval_id, decided_by="ducklm-runtime", reason=reason)
        try:
            await self._approvals.Deny(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("approvals", exc) from exc

    async def list_skills(self) -> list[SkillSummary]:
        try:
            reply = await self._skills.ListSkills(skills_pb2.ListSkillsRequest(page_size=500), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("skills", exc) from exc
        return [
            SkillSummary(
                name=s.name, description=s.description, allowed_tools=tuple(s.allowed_tools),
                pre_approved_tools=tuple(s.pre_approved_tools),
            )
            for s in reply.skills
        ]

    async def get_skill(self, name: str) -> SkillSummary:
        try:
            skill = await self._skills.GetSkill(skills_pb2.GetSkillRequest(name=name), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("skills", exc) from exc
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
        try:
            memory = await self._memory.Remember(
                memory_pb2.RememberRequest(text=text, task_id=task_id, kind=kind), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("memory", exc) from exc
        return str(memory.id)

    async def recall(self, query: str, top_k: int) -> list[RecalledMemory]:
        try:
            reply = await self._memory.Search(memory_pb2.SearchRequest(text=query, top_k=top_k), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("memory", exc) from exc
        return [RecalledMemory(id=r.memory.id, text=r.memory.text, score=r.score) for r in reply.results]

    async def record_experience(self, experience: dict[str, Any]) -> str:
        message = skills_pb2.Experience(**experience)
        try:
            reply = await self._skills.RecordExperience(
                skills_pb2.RecordExperienceRequest(experience=message), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("skills", exc) from exc
        return str(reply.id)

    async def propose_skill(self, skill_md: str, experience_ids: list[str], event_refs: list[str], rationale: str) -> str:
        request = skills_pb2.ProposeSkillRequest(
            skill_md=skill_md, experience_ids=experience_ids, event_refs=event_refs, rationale=rationale
        )
        try:
            reply = await self._skills.ProposeSkill(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("skills", exc) from exc
        return str(reply.id)

    async def list_experiences(self, ids: list[str], limit: int) -> list[dict[str, Any]]:
        """The experiences with these ids (looked for among the newest 500), or else the newest `limit`."""
        page_size = 500 if ids else max(limit, 1)
        try:
            reply = await self._skills.ListExperiences(
                skills_pb2.ListExperiencesRequest(page_size=page_size), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _peer_error("skills", exc) from exc
        experiences = [json_format.MessageToDict(e, preserving_proto_field_name=True) for e in reply.experiences]
        if ids:
            wanted = set(ids)
            experiences = [e for e in experiences if e.get("id") in wanted]
        return experiences
