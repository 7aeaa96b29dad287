"""The shapes of the gateway's JSON responses, as OpenAPI (JSON Schema 2020-12) components.

They mirror services/gateway/convert.py, which builds those responses; schemathesis checks every
response against them (tests/gateway/test_openapi.py).
"""

from __future__ import annotations

from typing import Any

from services.gateway.convert import (
    APPROVAL_SCOPES,
    APPROVAL_STATES,
    OUTCOMES,
    PROPOSAL_STATES,
    TASK_STATUSES,
)

__all__ = ["ANY_OBJ", "BOOL", "INT", "REF_TEMPLATE", "SCHEMAS", "STR", "Schema", "ref", "words"]

Schema = dict[str, Any]

REF_TEMPLATE = "#/components/schemas/{model}"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
STRS: Schema = {"type": "array", "items": STR}
ANY_OBJ: Schema = {"type": "object"}


def words(words: dict[str, int], *extra: str) -> Schema:
    return {"type": "string", "enum": [*extra, *words]}


SCHEMAS: dict[str, Schema] = {
    "Error": _obj(
        {
            "error": _obj(
                {"code": STR, "message": STR, "service": STR, "reason": STR},
                required=["code", "message"],
            )
        }
    ),
    "Usage": _obj({"prompt_tokens": INT, "completion_tokens": INT, "cached_prompt_tokens": INT}),
    "Task": _obj(
        {
            "id": STR,
            "status": words(TASK_STATUSES),
            "title": STR,
            "create_time": TIME,
            "update_time": TIME,
            "last_reply": STR,
            "error": STR,
            "steps": INT,
            "usage": ref("Usage"),
            "pending_approval_id": STR,
        }
    ),
    "TaskList": _obj({"tasks": {"type": "array", "items": ref("Task")}, "next_page_token": STR}),
    "ChatReply": _obj({"task_id": STR, "status": words(TASK_STATUSES), "reply": STR, "task": ref("Task")}),
    "Event": _obj(
        {"task_id": STR, "seq": INT, "type": STR, "create_time": TIME, "data": ANY_OBJ},
    ),
    "EventList": _obj({"events": {"type": "array", "items": ref("Event")}, "next_page_token": STR}),
    "Approval": _obj(
        {
            "id": STR,
            "task_id": STR,
            "tool": STR,
            "arguments": ANY_OBJ,
            "canonical_action": STR,
            "action_hash": STR,
            "working_directory": STR,
            "policy_version": STR,
            "state": words(APPROVAL_STATES, "unspecified"),
            "scope": words(APPROVAL_SCOPES, "unspecified"),
            "create_time": TIME,
            "decide_time": TIME,
            "expire_time": TIME,
            "decided_by": STR,
            "reason": STR,
            "pattern": STR,
            "pattern_hash": STR,
        }
    ),
    "ApprovalList": _obj({"approvals": {"type": "array", "items": ref("Approval")}, "next_page_token": STR}),
    "SkillProblem": _obj({"source": STR, "field": STR, "message": STR}),
    "Skill": _obj(
        {
            "name": STR,
            "description": STR,
            "license": STR,
            "compatibility": STR,
            "metadata": {"type": "object", "additionalProperties": STR},
            "allowed_tools": STRS,
            "pre_approved_tools": STRS,
            "files": STRS,
            "warnings": {"type": "array", "items": ref("SkillProblem")},
            "body": STR,
        },
        required=["name", "description", "license", "compatibility", "metadata", "allowed_tools", "files"],
    ),
    "SkillList": _obj(
        {
            "skills": {"type": "array", "items": ref("Skill")},
            "invalid_skills": {"type": "array", "items": ref("SkillProblem")},
            "next_page_token": STR,
        }
    ),
    "Validation": _obj(
        {
            "valid": BOOL,
            "problems": {"type": "array", "items": ref("SkillProblem")},
            "warnings": {"type": "array", "items": ref("SkillProblem")},
        }
    ),
    "Proposal": _obj(
        {
            "id": STR,
            "name": STR,
            "skill_md": STR,
            "state": words(PROPOSAL_STATES, "unspecified"),
            "problems": {"type": "array", "items": ref("SkillProblem")},
            "experience_ids": STRS,
            "event_refs": STRS,
            "rationale": STR,
            "create_time": TIME,
            "decide_time": TIME,
            "decided_by": STR,
            "reason": STR,
        }
    ),
    "ProposalList": _obj({"proposals": {"type": "array", "items": ref("Proposal")}, "next_page_token": STR}),
    "Experience": _obj(
        {
            "id": STR,
            "task_id": STR,
            "goal": STR,
            "outcome": words(OUTCOMES, "unspecified"),
            "steps": INT,
            "tools_used": STRS,
            "skills_used": STRS,
            "errors": STRS,
            "duration_seconds": NUM,
            "prompt_tokens": INT,
            "completion_tokens": INT,
            "final_answer": STR,
            "create_time": TIME,
        }
    ),
    "ExperienceList": _obj(
        {"experiences": {"type": "array", "items": ref("Experience")}, "next_page_token": STR}
    ),
    "Memory": _obj(
        {
            "id": STR,
            "text": STR,
            "scope": {"type": "string", "enum": ["task", "long_term", "project", "unspecified"]},
            "task_id": STR,
            "project": STR,
            "kind": STR,
            "tags": STRS,
            "metadata": ANY_OBJ,
            "create_time": TIME,
            "update_time": {"anyOf": [TIME, {"type": "null"}]},
            "collection": STR,
        }
    ),
    "MemoryList": _obj(
        {"memories": {"type": "array", "items": ref("Memory")}, "next_page_token": STR, "total_size": INT}
    ),
    "SearchResults": _obj(
        {
            "results": {"type": "array", "items": _obj({"memory": ref("Memory"), "score": NUM})},
            "embedding_ms": NUM,
            "search_ms": NUM,
        }
    ),
    "Deleted": _obj({"deleted": INT}),
    "Health": _obj(
        {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "services": {"type": "object", "additionalProperties": STR},
            "open_streams": INT,
        }
    ),
    "Session": _obj({"auth_required": BOOL, "authenticated": BOOL}),
    "Model": _obj({"id": STR, "object": {"const": "model"}, "created": INT, "owned_by": STR}),
    "ModelList": _obj({"object": {"const": "list"}, "data": {"type": "array", "items": ref("Model")}}),
    "ChatCompletion": _obj(
        {
            "id": STR,
            "object": {"const": "chat.completion"},
            "created": INT,
            "model": STR,
            "system_fingerprint": STR,
            "choices": {
                "type": "array",
                "items": _obj(
                    {
                        "index": INT,
                        "message": _obj({"role": {"const": "assistant"}, "content": STR}),
                        "finish_reason": STR,
                        "logprobs": {"type": "null"},
                    }
                ),
            },
            "usage": _obj({"prompt_tokens": INT, "completion_tokens": INT, "total_tokens": INT}),
            "task_id": STR,
        }
    ),
}
