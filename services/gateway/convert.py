"""Proto messages to the JSON the REST API returns, and the words clients use for enums.

JSON fields are the proto's snake_case names; enums are short lowercase words ("running",
"pending", "task"); times are RFC 3339 strings or null; Structs are plain objects.
"""

from __future__ import annotations

from typing import Any

from ducklm.approvals.v1 import approvals_pb2
from ducklm.common.v1 import common_pb2
from ducklm.memory.v1 import memory_pb2
from ducklm.runtime.v1 import runtime_pb2
from ducklm.skills.v1 import skills_pb2
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = [
    "APPROVAL_SCOPES",
    "APPROVAL_STATES",
    "OUTCOMES",
    "PROPOSAL_STATES",
    "TASK_STATUSES",
    "approval_json",
    "collection_json",
    "enum_word",
    "enum_words",
    "event_json",
    "experience_json",
    "memory_json",
    "problem_json",
    "proposal_json",
    "skill_json",
    "task_json",
]


def enum_word(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def enum_words(enum: Any, prefix: str) -> dict[str, int]:
    """Every value of `enum` but UNSPECIFIED, by its word: {"pending": 1, ...}."""
    return {enum_word(enum, value, prefix): value for value in enum.values() if value != 0}


TASK_STATUSES = enum_words(common_pb2.TaskStatus, "TASK_STATUS_")
APPROVAL_STATES = enum_words(approvals_pb2.ApprovalState, "APPROVAL_STATE_")
APPROVAL_SCOPES = enum_words(approvals_pb2.ApprovalScope, "APPROVAL_SCOPE_")
PROPOSAL_STATES = enum_words(skills_pb2.ProposalState, "PROPOSAL_STATE_")
OUTCOMES = enum_words(skills_pb2.Outcome, "OUTCOME_")


def _time(stamp: Timestamp) -> str | None:
    return stamp.ToJsonString() if stamp.seconds or stamp.nanos else None


def _struct(struct: Struct) -> dict[str, Any]:
    return dict(json_format.MessageToDict(struct))


def task_json(task: runtime_pb2.Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": enum_word(common_pb2.TaskStatus, task.status, "TASK_STATUS_"),
        "title": task.title,
        "create_time": _time(task.create_time),
        "update_time": _time(task.update_time),
        "last_reply": task.last_reply,
        "error": task.error,
        "steps": task.steps,
        "usage": {
            "prompt_tokens": task.usage.prompt_tokens,
            "completion_tokens": task.usage.completion_tokens,
            "cached_prompt_tokens": task.usage.cached_prompt_tokens,
        },
        "pending_approval_id": task.pending_approval_id,
    }


def event_json(event: common_pb2.Event) -> dict[str, Any]:
    return {
        "task_id": event.task_id,
        "seq": event.seq,
        "type": enum_word(common_pb2.EventType, event.type, "EVENT_TYPE_"),
        "create_time": _time(event.create_time),
        "data": _struct(event.data),
    }


def approval_json(approval: approvals_pb2.Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "task_id": approval.task_id,
        "tool": approval.tool_name,
        "arguments": _struct(approval.arguments),
        "canonical_action": approval.canonical_action,
        "action_hash": approval.action_hash,
        "working_directory": approval.working_directory,
        "policy_version": approval.policy_version,
        "state": enum_word(approvals_pb2.ApprovalState, approval.state, "APPROVAL_STATE_"),
        "scope": enum_word(approvals_pb2.ApprovalScope, approval.scope, "APPROVAL_SCOPE_"),
        "create_time": _time(approval.create_time),
        "decide_time": _time(approval.decide_time),
        "expire_time": _time(approval.expire_time),
        "decided_by": approval.decided_by,
        "reason": approval.reason,
        "pattern": approval.pattern,
        "pattern_hash": approval.pattern_hash,
    }


def skill_json(skill: skills_pb2.Skill, *, with_body: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": skill.name,
        "description": skill.description,
        "license": skill.license,
        "compatibility": skill.compatibility,
        "metadata": dict(skill.metadata),
        "allowed_tools": list(skill.allowed_tools),
        "pre_approved_tools": list(skill.pre_approved_tools),
        "files": list(skill.files),
        "warnings": [problem_json(warning) for warning in skill.warnings],
    }
    if with_body:
        body["body"] = skill.body
    return body


def problem_json(problem: skills_pb2.SkillProblem) -> dict[str, Any]:
    return {"source": problem.source, "field": problem.field, "message": problem.message}


def proposal_json(proposal: skills_pb2.SkillProposal) -> dict[str, Any]:
    return {
        "id": proposal.id,
        "name": proposal.name,
        "skill_md": proposal.skill_md,
        "state": enum_word(skills_pb2.ProposalState, proposal.state, "PROPOSAL_STATE_"),
        "problems": [problem_json(problem) for problem in proposal.problems],
        "experience_ids": list(proposal.experience_ids),
        "event_refs": list(proposal.event_refs),
        "rationale": proposal.rationale,
        "create_time": _time(proposal.create_time),
        "decide_time": _time(proposal.decide_time),
        "decided_by": proposal.decided_by,
        "reason": proposal.reason,
    }


def experience_json(experience: skills_pb2.Experience) -> dict[str, Any]:
    return {
        "id": experience.id,
        "task_id": experience.task_id,
        "goal": experience.goal,
        "outcome": enum_word(skills_pb2.Outcome, experience.outcome, "OUTCOME_"),
        "steps": experience.steps,
        "tools_used": list(experience.tools_used),
        "skills_used": list(experience.skills_used),
        "errors": list(experience.errors),
        "duration_seconds": experience.duration_seconds,
        "prompt_tokens": experience.prompt_tokens,
        "completion_tokens": experience.completion_tokens,
        "final_answer": experience.final_answer,
        "create_time": _time(experience.create_time),
    }


def memory_json(memory: memory_pb2.Memory) -> dict[str, Any]:
    return {
        "id": memory.id,
        "text": memory.text,
        "scope": enum_word(memory_pb2.MemoryScope, memory.scope, "MEMORY_SCOPE_"),
        "task_id": memory.task_id,
        "project": memory.project,
        "kind": memory.kind,
        "tags": list(memory.tags),
        "metadata": _struct(memory.metadata),
        "create_time": _time(memory.create_time),
        "update_time": _time(memory.update_time) if memory.HasField("update_time") else None,
        "collection": memory.collection,
    }


def collection_json(collection: memory_pb2.Collection) -> dict[str, Any]:
    return {
        "name": collection.name,
        "dimension": collection.dimension,
        "count": collection.count,
        "backend": collection.backend,
        "embedding_model": collection.embedding_model,
    }
