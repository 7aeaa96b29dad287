"""`AsyncClient`: DuckLM's gRPC API as typed async Python — chat, event streams, tasks, approvals,
skills and memory. Each method builds the request, calls through `Transport` (transport.py: channels,
deadlines, retries, errors) and returns the typed result (models.py).

    async with AsyncClient() as client:
        result = await client.chat("What is in README.md?")
        print(result.reply)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any, Self

import grpc
from ducklm.approvals.v1 import approvals_pb2
from ducklm.memory.v1 import memory_pb2
from ducklm.runtime.v1 import runtime_pb2
from ducklm.skills.v1 import skills_pb2
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ducklm_client import convert
from ducklm_client.config import SERVICES, Connection
from ducklm_client.models import (
    REST_STATUSES,
    Approval,
    ChatResult,
    Event,
    Memory,
    MemoryPage,
    Proposal,
    Replay,
    SearchResult,
    Skill,
    SkillList,
    SkillProblem,
    Task,
    TaskStatus,
    Validation,
)
from ducklm_client.transport import CALL_TIMEOUT, CHAT_TIMEOUT, Transport

__all__ = ["CALL_TIMEOUT", "CHAT_TIMEOUT", "AsyncClient"]

_APPROVAL_STATES = ("pending", "approved", "denied", "used", "expired")
_PROPOSAL_STATES = ("pending", "invalid", "promoted", "rejected")


def _enum_name(prefix: str, word: str | None, allowed: Sequence[str]) -> str:
    """The proto enum name for a word: "pending" -> "APPROVAL_STATE_PENDING"; none -> UNSPECIFIED."""
    if not word:
        return f"{prefix}UNSPECIFIED"
    if word not in allowed:
        raise ValueError(f"{word!r} is not one of {', '.join(allowed)}")
    return f"{prefix}{word.upper()}"


class AsyncClient:
    """DuckLM over gRPC. Use as `async with AsyncClient() as client:` or call `close()`.

    `connection` defaults to `Connection.from_env()` (DUCKLM_RUNTIME_ADDRESS, ...); keyword
    addresses (`runtime="10.0.0.5:50051"`) override it."""

    def __init__(self, connection: Connection | None = None, **addresses: str) -> None:
        self.connection = (connection or Connection.from_env()).with_addresses(**addresses)
        self._transport = Transport(self.connection)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    # -- chat and tasks (runtime) ------------------------------------------------------------

    async def chat(
        self, message: str, *, task_id: str = "", skill: str = "", timeout: float = CHAT_TIMEOUT
    ) -> ChatResult:
        """Sends a message (continuing `task_id`, or opening a task) and waits until the task
        rests: completed, failed, cancelled, or waiting for an approval (then `reply` is "")."""
        request = runtime_pb2.ChatRequest(message=message, task_id=task_id, skill=skill)
        response = await self._transport.unary("runtime", "Chat", request, timeout)
        return ChatResult(task=convert.task(response.task), reply=response.reply)

    async def stream_chat(
        self, message: str, *, task_id: str = "", skill: str = "", timeout: float | None = CHAT_TIMEOUT
    ) -> AsyncGenerator[Event, None]:
        """Sends a message and yields the task's events from it on, live `model_token` events
        (seq 0; `data["reply"]` is the next piece of the visible reply) included, until the
        task rests. The first event carries the task id."""
        request = runtime_pb2.ChatRequest(message=message, task_id=task_id, skill=skill)
        async for message_ in self._transport.stream("runtime", "StreamChat", request, timeout):
            yield convert.event(message_)

    async def get_task(self, task_id: str) -> Task:
        return convert.task(
            await self._transport.unary("runtime", "GetTask", runtime_pb2.GetTaskRequest(task_id=task_id))
        )

    async def list_tasks(self, *, status: TaskStatus | str | None = None, limit: int = 50) -> list[Task]:
        """Tasks, newest first, at most `limit`."""
        tasks: list[Task] = []
        token = ""
        while len(tasks) < limit:
            request = runtime_pb2.ListTasksRequest(
                page_size=min(limit - len(tasks), 500),
                page_token=token,
                status=convert.task_status_name(status),
            )
            response = await self._transport.unary("runtime", "ListTasks", request)
            tasks.extend(convert.task(item) for item in response.tasks)
            token = response.next_page_token
            if not token:
                break
        return tasks

    async def cancel_task(self, task_id: str, reason: str = "") -> Task:
        request = runtime_pb2.CancelTaskRequest(task_id=task_id, reason=reason)
        return convert.task(await self._transport.unary("runtime", "CancelTask", request))

    async def list_events(self, task_id: str) -> list[Event]:
        """Every stored event of a task, in order."""
        events: list[Event] = []
        token = ""
        while True:
            request = runtime_pb2.ListTaskEventsRequest(task_id=task_id, page_size=1000, page_token=token)
            response = await self._transport.unary("runtime", "ListTaskEvents", request)
            events.extend(convert.event(item) for item in response.events)
            token = response.next_page_token
            if not token:
                return events

    async def stream_events(
        self, task_id: str, *, after_seq: int = 0, follow: bool = False, timeout: float | None = None
    ) -> AsyncGenerator[Event, None]:
        """The task's events after `after_seq`, then each new one as it happens. Ends when the
        task rests, unless `follow` (then it runs until you stop iterating)."""
        request = runtime_pb2.StreamTaskEventsRequest(task_id=task_id, after_seq=after_seq, follow=follow)
        async for message in self._transport.stream("runtime", "StreamTaskEvents", request, timeout):
            yield convert.event(message)

    async def stream_until_rest(
        self, task_id: str, *, after_seq: int, timeout: float | None = CHAT_TIMEOUT
    ) -> AsyncGenerator[Event, None]:
        """Events after `after_seq` until the task next comes to rest — e.g. after approving or
        denying, while the runtime picks the decision up and goes on."""
        async for event in self.stream_events(task_id, after_seq=after_seq, follow=True, timeout=timeout):
            yield event
            if event.type == "status_changed" and event.data.get("to") in REST_STATUSES:
                return

    async def replay(self, task_id: str) -> Replay:
        """Re-runs the task's recorded model outputs through the loop (no model server) and
        says whether the same actions come out."""
        return convert.replay(
            await self._transport.unary(
                "runtime", "ReplayTask", runtime_pb2.ReplayTaskRequest(task_id=task_id), CHAT_TIMEOUT
            )
        )

    # -- approvals (served by the tools service) --------------------------------------------

    async def list_approvals(
        self, *, state: str | None = "pending", task_id: str = "", limit: int = 100
    ) -> list[Approval]:
        """Approvals, by default the pending ones; `state=None` lists all."""
        approvals: list[Approval] = []
        token = ""
        value = _enum_name("APPROVAL_STATE_", state, _APPROVAL_STATES)
        while len(approvals) < limit:
            request = approvals_pb2.ListApprovalsRequest(
                page_size=min(limit - len(approvals), 500), page_token=token, state=value, task_id=task_id
            )
            response = await self._transport.unary("approvals", "ListApprovals", request)
            approvals.extend(convert.approval(item) for item in response.approvals)
            token = response.next_page_token
            if not token:
                break
        return approvals

    async def get_approval(self, approval_id: str) -> Approval:
        request = approvals_pb2.GetApprovalRequest(approval_id=approval_id)
        return convert.approval(await self._transport.unary("approvals", "GetApproval", request))

    async def approve(
        self,
        approval_id: str,
        *,
        scope: str = "once",
        ttl_seconds: int = 0,
        reason: str = "",
        decided_by: str = "",
    ) -> Approval:
        """Allows the exact action the approval names. `scope` "once" covers one run, "task"
        the rest of the task, "task_pattern" every run_command call of the approval's `pattern`
        for the rest of the task. Needs the approver credential (`Connection.approver_token`);
        the decision is recorded as that principal (`decided_by` is ignored, kept for older
        callers). The waiting task goes on by itself within about a second."""
        request = approvals_pb2.ApproveRequest(
            approval_id=approval_id,
            ttl_seconds=ttl_seconds,
            reason=reason,
            scope=_enum_name("APPROVAL_SCOPE_", scope, ("once", "task", "task_pattern")),
        )
        return convert.approval(await self._transport.unary("approvals", "Approve", request, as_approver=True))

    async def deny(self, approval_id: str, *, reason: str = "", decided_by: str = "") -> Approval:
        """Refuses the action; needs the approver credential (`decided_by` is ignored)."""
        request = approvals_pb2.DenyRequest(approval_id=approval_id, reason=reason)
        return convert.approval(await self._transport.unary("approvals", "Deny", request, as_approver=True))

    # -- skills ------------------------------------------------------------------------------

    async def list_skills(self) -> SkillList:
        skills: list[Skill] = []
        invalid: dict[tuple[str, str, str], SkillProblem] = {}
        token = ""
        while True:
            response = await self._transport.unary(
                "skills", "ListSkills", skills_pb2.ListSkillsRequest(page_size=500, page_token=token)
            )
            skills.extend(convert.skill(item) for item in response.skills)
            for item in response.invalid_skills:
                problem = convert.problem(item)
                invalid[(problem.source, problem.field, problem.message)] = problem
            token = response.next_page_token
            if not token:
                return SkillList(skills=skills, invalid=list(invalid.values()))

    async def get_skill(self, name: str) -> Skill:
        return convert.skill(
            await self._transport.unary("skills", "GetSkill", skills_pb2.GetSkillRequest(name=name))
        )

    async def validate_skill(
        self, *, skill_md: str | None = None, folder_name: str = "", name: str | None = None, strict: bool = False
    ) -> Validation:
        """Validates a SKILL.md text (`folder_name`: the folder it would live in) or a skill
        already on the server (`name`); `strict` judges by the Agent Skills spec alone."""
        if (skill_md is None) == (name is None):
            raise ValueError("pass either skill_md (with folder_name) or name")
        if name is not None:
            request = skills_pb2.ValidateSkillRequest(name=name, strict=strict)
        else:
            request = skills_pb2.ValidateSkillRequest(skill_md=skill_md, folder_name=folder_name, strict=strict)
        response = await self._transport.unary("skills", "ValidateSkill", request)
        return Validation(
            valid=response.valid,
            problems=[convert.problem(item) for item in response.problems],
            warnings=[convert.problem(item) for item in response.warnings],
        )

    async def list_proposals(self, *, state: str | None = None, limit: int = 100) -> list[Proposal]:
        proposals: list[Proposal] = []
        token = ""
        value = _enum_name("PROPOSAL_STATE_", state, _PROPOSAL_STATES)
        while len(proposals) < limit:
            request = skills_pb2.ListProposalsRequest(
                page_size=min(limit - len(proposals), 500), page_token=token, state=value
            )
            response = await self._transport.unary("skills", "ListProposals", request)
            proposals.extend(convert.proposal(item) for item in response.proposals)
            token = response.next_page_token
            if not token:
                break
        return proposals

    async def get_proposal(self, proposal_id: str) -> Proposal:
        request = skills_pb2.GetProposalRequest(proposal_id=proposal_id)
        return convert.proposal(await self._transport.unary("skills", "GetProposal", request))

    async def promote_proposal(self, proposal_id: str, *, decided_by: str) -> Proposal:
        request = skills_pb2.PromoteProposalRequest(proposal_id=proposal_id, decided_by=decided_by)
        return convert.proposal(await self._transport.unary("skills", "PromoteProposal", request))

    async def reject_proposal(self, proposal_id: str, *, decided_by: str, reason: str = "") -> Proposal:
        request = skills_pb2.RejectProposalRequest(
            proposal_id=proposal_id, decided_by=decided_by, reason=reason
        )
        return convert.proposal(await self._transport.unary("skills", "RejectProposal", request))

    # -- memory ------------------------------------------------------------------------------

    async def remember(
        self,
        text: str,
        *,
        kind: str = "note",
        tags: Sequence[str] = (),
        task_id: str = "",
        metadata: dict[str, Any] | None = None,
        collection: str = "",
        scope: str = "",
        project: str = "",
    ) -> Memory:
        """Stores a text in vector memory: in `scope` ("task", "long_term" or "project"; by
        default the task's when `task_id` is given, else long-term). `EmbeddingsDisabledError`
        when the runtime has no embedding model configured."""
        extra = struct_pb2.Struct()
        extra.update(metadata or {})
        request = memory_pb2.RememberRequest(
            text=text, kind=kind, tags=list(tags), task_id=task_id, metadata=extra, collection=collection,
            scope=_scope(scope), project=project,
        )
        return convert.memory(await self._transport.unary("memory", "Remember", request))

    async def search(
        self,
        text: str,
        *,
        top_k: int = 5,
        kind: str = "",
        tags: Sequence[str] = (),
        task_id: str = "",
        score_threshold: float = 0.0,
        collection: str = "",
    ) -> SearchResult:
        """The memories nearest `text`, best first."""
        request = memory_pb2.SearchRequest(
            text=text,
            top_k=top_k,
            score_threshold=score_threshold,
            collection=collection,
            filter=memory_pb2.MemoryFilter(task_id=task_id, kind=kind, tags=list(tags)),
        )
        return convert.scored_memory_list(await self._transport.unary("memory", "Search", request))

    async def get_memory(self, memory_id: str, *, collection: str = "") -> Memory:
        request = memory_pb2.GetMemoryRequest(memory_id=memory_id, collection=collection)
        return convert.memory(await self._transport.unary("memory", "GetMemory", request))

    async def forget(self, memory_id: str, *, collection: str = "") -> int:
        """Deletes one memory; returns how many were deleted (0 or 1)."""
        response = await self._transport.unary(
            "memory", "Forget", memory_pb2.ForgetRequest(memory_id=memory_id, collection=collection)
        )
        return int(response.deleted)

    async def list_memories(
        self,
        *,
        scope: str = "",
        task_id: str = "",
        project: str = "",
        kind: str = "",
        tags: Sequence[str] = (),
        text: str = "",
        page_size: int = 0,
        page_token: str = "",
        collection: str = "",
    ) -> MemoryPage:
        """Memories matching every condition given, newest first, one page at a time."""
        request = memory_pb2.ListMemoriesRequest(
            filter=memory_pb2.MemoryFilter(
                scope=_scope(scope), task_id=task_id, project=project, kind=kind, tags=list(tags), text=text
            ),
            page_size=page_size, page_token=page_token, collection=collection,
        )
        return convert.memory_page(await self._transport.unary("memory", "ListMemories", request))

    async def promote_memory(self, memory_id: str, *, project: str = "", collection: str = "") -> Memory:
        """Keeps a memory long-term (or, with `project`, in that project)."""
        request = memory_pb2.PromoteMemoryRequest(
            memory_id=memory_id, scope=_scope("project" if project else "long_term"), project=project,
            collection=collection,
        )
        return convert.memory(await self._transport.unary("memory", "PromoteMemory", request))

    async def update_memory(
        self, memory_id: str, *, text: str | None = None, kind: str | None = None,
        tags: Sequence[str] | None = None, collection: str = "",
    ) -> Memory:
        """Changes the fields given; a new text is embedded again."""
        mask = [name for name, value in (("text", text), ("kind", kind), ("tags", tags)) if value is not None]
        request = memory_pb2.UpdateMemoryRequest(
            memory_id=memory_id, update_mask=mask, text=text or "", kind=kind or "", tags=list(tags or ()),
            collection=collection,
        )
        return convert.memory(await self._transport.unary("memory", "UpdateMemory", request))

    async def forget_matching(
        self, *, scope: str = "", task_id: str = "", project: str = "", kind: str = "",
        tags: Sequence[str] = (), text: str = "", collection: str = "",
    ) -> int:
        """Deletes every memory matching all the conditions given (at least one)."""
        request = memory_pb2.ForgetRequest(
            filter=memory_pb2.MemoryFilter(
                scope=_scope(scope), task_id=task_id, project=project, kind=kind, tags=list(tags), text=text
            ),
            collection=collection,
        )
        return int((await self._transport.unary("memory", "Forget", request)).deleted)

    async def forget_scope(
        self, scope: str, *, confirm: str, task_id: str = "", project: str = "", collection: str = ""
    ) -> int:
        """Deletes every memory of one scope; `confirm` must name it ("long_term",
        "task:<task_id>" or "project:<name>")."""
        request = memory_pb2.ForgetRequest(
            scope=memory_pb2.ScopeRef(scope=_scope(scope), task_id=task_id, project=project),
            confirm=confirm, collection=collection,
        )
        return int((await self._transport.unary("memory", "Forget", request)).deleted)

    # -- health ------------------------------------------------------------------------------

    async def health(self, timeout: float = 5.0) -> dict[str, str]:
        """Each service's grpc.health.v1 status: "serving", "not_serving", or "unreachable: ..."."""
        statuses: dict[str, str] = {}
        for service in SERVICES:
            stub = health_pb2_grpc.HealthStub(self._transport.channel(service))
            try:
                reply = await stub.Check(
                    health_pb2.HealthCheckRequest(), timeout=timeout, metadata=self._transport.metadata
                )
                statuses[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status).lower()
            except grpc.aio.AioRpcError as exc:
                statuses[service] = f"unreachable: {exc.code().name} {exc.details() or ''}".strip()
        return statuses


def _scope(name: str) -> memory_pb2.MemoryScope:
    if not name:
        return memory_pb2.MEMORY_SCOPE_UNSPECIFIED
    if name not in convert.MEMORY_SCOPES:
        raise ValueError(f"unknown memory scope {name!r}: use task, long_term or project")
    return convert.MEMORY_SCOPES[name]
