"""Generated proto messages -> the client's dataclasses (models.py), and the words a caller
passes -> the proto enum names a request takes. Nothing else."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ducklm.approvals.v1 import approvals_pb2
from ducklm.common.v1 import common_pb2
from ducklm.memory.v1 import memory_pb2
from ducklm.runtime.v1 import runtime_pb2
from ducklm.skills.v1 import skills_pb2
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from ducklm_client.models import (
    Approval,
    Event,
    Memory,
    MemoryPage,
    Proposal,
    Replay,
    ScoredMemory,
    SearchResult,
    Skill,
    SkillProblem,
    Task,
    TaskStatus,
    Usage,
)

__all__ = [
    "APPROVAL_STATES",
    "PROPOSAL_STATES",
    "approval",
    "enum_name",
    "event",
    "memory",
    "memory_page",
    "plain",
    "problem",
    "proposal",
    "replay",
    "scored_memory_list",
    "skill",
    "struct",
    "task",
    "task_status_name",
    "time",
]


def _enum_word(enum: Any, value: int, prefix: str) -> str:
    """`APPROVAL_STATE_PENDING` -> "pending"."""
    return str(enum.Name(value)).removeprefix(prefix).lower()


def plain(value: Any) -> Any:
    """JSON from a Struct has only floats; whole numbers read better as ints (seq 3, not 3.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def struct(message: struct_pb2.Struct) -> dict[str, Any]:
    result: dict[str, Any] = plain(json_format.MessageToDict(message))
    return result


def time(stamp: timestamp_pb2.Timestamp) -> datetime | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    converted: datetime = stamp.ToDatetime(tzinfo=UTC)
    return converted


APPROVAL_STATES = ("pending", "approved", "denied", "used", "expired")
PROPOSAL_STATES = ("pending", "invalid", "promoted", "rejected")


def enum_name(prefix: str, word: str | None, allowed: Sequence[str]) -> str:
    """The proto enum name for a word: "pending" -> "APPROVAL_STATE_PENDING"; none -> UNSPECIFIED."""
    if not word:
        return f"{prefix}UNSPECIFIED"
    if word not in allowed:
        raise ValueError(f"{word!r} is not one of {', '.join(allowed)}")
    return f"{prefix}{word.upper()}"


def task_status_name(status: TaskStatus | str | None) -> str:
    """ "completed" -> "TASK_STATUS_COMPLETED" (a proto enum field takes the name)."""
    return f"TASK_STATUS_{TaskStatus(status).name}" if status else "TASK_STATUS_UNSPECIFIED"


def task(message: runtime_pb2.Task) -> Task:
    return Task(
        id=message.id,
        status=TaskStatus(_enum_word(common_pb2.TaskStatus, message.status, "TASK_STATUS_")),
        title=message.title,
        created=time(message.create_time),
        updated=time(message.update_time),
        last_reply=message.last_reply,
        error=message.error,
        steps=message.steps,
        usage=Usage(
            prompt_tokens=message.usage.prompt_tokens,
            completion_tokens=message.usage.completion_tokens,
            cached_prompt_tokens=message.usage.cached_prompt_tokens,
        ),
        pending_approval_id=message.pending_approval_id,
    )


def event(message: common_pb2.Event) -> Event:
    kind = message.WhichOneof("payload")
    return Event(
        task_id=message.task_id,
        seq=message.seq,
        type=_enum_word(common_pb2.EventType, message.type, "EVENT_TYPE_"),
        created=time(message.create_time),
        data=struct(message.data),
        payload=getattr(message, kind) if kind else None,
    )


def approval(message: approvals_pb2.Approval) -> Approval:
    return Approval(
        id=message.id,
        task_id=message.task_id,
        tool=message.tool_name,
        arguments=struct(message.arguments),
        state=_enum_word(approvals_pb2.ApprovalState, message.state, "APPROVAL_STATE_"),
        scope=_enum_word(approvals_pb2.ApprovalScope, message.scope, "APPROVAL_SCOPE_"),
        action_hash=message.action_hash,
        working_directory=message.working_directory,
        created=time(message.create_time),
        decided=time(message.decide_time),
        expires=time(message.expire_time),
        decided_by=message.decided_by,
        reason=message.reason,
        pattern=message.pattern,
    )


def skill(message: skills_pb2.Skill) -> Skill:
    return Skill(
        name=message.name,
        description=message.description,
        allowed_tools=list(message.allowed_tools),
        license=message.license,
        compatibility=message.compatibility,
        metadata=dict(message.metadata),
        body=message.body,
        files=list(message.files),
    )


def problem(message: skills_pb2.SkillProblem) -> SkillProblem:
    return SkillProblem(source=message.source, field=message.field, message=message.message)


def proposal(message: skills_pb2.SkillProposal) -> Proposal:
    return Proposal(
        id=message.id,
        name=message.name,
        state=_enum_word(skills_pb2.ProposalState, message.state, "PROPOSAL_STATE_"),
        skill_md=message.skill_md,
        problems=[problem(item) for item in message.problems],
        rationale=message.rationale,
        experience_ids=list(message.experience_ids),
        event_refs=list(message.event_refs),
        created=time(message.create_time),
        decided_by=message.decided_by,
        reason=message.reason,
    )


MEMORY_SCOPES: dict[str, memory_pb2.MemoryScope] = {
    "task": memory_pb2.MEMORY_SCOPE_TASK,
    "long_term": memory_pb2.MEMORY_SCOPE_LONG_TERM,
    "project": memory_pb2.MEMORY_SCOPE_PROJECT,
}


def memory(message: memory_pb2.Memory) -> Memory:
    return Memory(
        id=message.id,
        text=message.text,
        task_id=message.task_id,
        kind=message.kind,
        tags=list(message.tags),
        metadata=struct(message.metadata),
        created=time(message.create_time),
        scope=memory_pb2.MemoryScope.Name(message.scope).removeprefix("MEMORY_SCOPE_").lower(),
        project=message.project,
        updated=time(message.update_time) if message.HasField("update_time") else None,
        collection=message.collection,
    )


def memory_page(message: memory_pb2.ListMemoriesResponse) -> MemoryPage:
    return MemoryPage([memory(item) for item in message.memories], message.next_page_token, int(message.total_size))


def scored_memory_list(message: memory_pb2.SearchResponse) -> SearchResult:
    return SearchResult(
        results=[ScoredMemory(memory=memory(item.memory), score=item.score) for item in message.results],
        embedding_ms=message.embedding_ms,
        search_ms=message.search_ms,
    )


def _directive(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return {"raw": text}
    return parsed if isinstance(parsed, dict) else {"raw": text}


def replay(message: runtime_pb2.ReplayTaskResponse) -> Replay:
    return Replay(
        directives=[_directive(text) for text in message.directives],
        matches=message.matches,
        mismatch=message.mismatch,
    )
