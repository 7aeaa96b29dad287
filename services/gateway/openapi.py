"""The OpenAPI 3.1 document of the gateway, served at /openapi.json: every operation, its
parameters, request body and answers.

Request bodies come from the routes' own pydantic models (one source of truth); response shapes
are in openapi_schemas.py. Tests check every route is described and that responses match it
(schemathesis).
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

from services.gateway import auth
from services.gateway.convert import APPROVAL_STATES, OUTCOMES, PROPOSAL_STATES, TASK_STATUSES
from services.gateway.inputs import INT64_MAX
from services.gateway.openapi_schemas import (
    ANY_OBJ,
    BOOL,
    INT,
    REF_TEMPLATE,
    SCHEMAS,
    STR,
    Schema,
    ref,
    words,
)
from services.gateway.routes import approvals, completions, memory, skills, tasks

__all__ = ["openapi_document"]

# One Server-Sent Event as clients parse it; `data` is one line of JSON (or "[DONE]").
_SSE = {
    "text/event-stream": {
        "schema": {
            "type": "object",
            "properties": {"event": STR, "data": STR, "id": STR, "retry": INT},
            "required": ["data"],
        }
    }
}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": ref(name)}}


def _responses(ok: int, name: str | None, *errors: int, stream: bool = False) -> dict[str, Any]:
    content = {**(_json(name) if name else {}), **(_SSE if stream else {})}
    described = {"description": "OK", "content": content} if content else {"description": "OK"}
    out: dict[str, Any] = {str(ok): described}
    for status in sorted({*errors, 400, 401}):
        out[str(status)] = {"description": _ERROR_TEXT.get(status, "Error"), "content": _json("Error")}
    return out


_ERROR_TEXT = {
    400: "Invalid request",
    401: "Token required",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the resource's state",
    413: "Request body too large",
    415: "Not sent as Content-Type: application/json",
    429: "Too many requests",
    502: "A backend failed",
    503: "A backend is down or too slow (the error names it), or too many streams are open",
    504: "The task did not come to rest in time",
}
# Every route that calls a backend can answer these.
_BACKEND = (502, 503)


def _body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": ref(model.__name__)}}}


def _query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _paging(maximum: int = 500) -> list[dict[str, Any]]:
    return [
        _query("page_size", {"type": "integer", "minimum": 0, "maximum": maximum}, "0 means the default"),
        _query("page_token", STR, "next_page_token of the previous page"),
    ]


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str,
    params: list[Any] | None = None,
    body: dict[str, Any] | None = None,
    open_: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = body
        responses["413"] = {"description": _ERROR_TEXT[413], "content": _json("Error")}
    if open_:
        operation["security"] = []
    return operation


def _paths() -> dict[str, Any]:
    task_id, approval_id, proposal_id = _path("task_id"), _path("approval_id"), _path("proposal_id")
    statuses = {"type": "string", "enum": ["all", *TASK_STATUSES]}
    return {
        "/healthz": {
            "get": _op(
                "Health of every backend",
                {
                    "200": {"description": "All serving", "content": _json("Health")},
                    "503": {"description": "Some backend is not serving", "content": _json("Health")},
                },
                tag="health",
                open_=True,
            )
        },
        "/openapi.json": {
            "get": _op(
                "This document",
                {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": ANY_OBJ}}}},
                tag="health",
                open_=True,
            )
        },
        "/v1/auth/session": {
            "get": _op(
                "Whether a token is needed and whether this client has it",
                _responses(200, "Session"),
                tag="auth",
                open_=True,
            )
        },
        "/v1/auth/login": {
            "post": _op(
                "Check the token and set the WebChat session cookie",
                _responses(204, None),
                tag="auth",
                body=_body(auth.LoginBody),
                open_=True,
            )
        },
        "/v1/auth/logout": {
            "post": _op(
                "Clear the WebChat session cookie",
                {"204": {"description": "Logged out"}},
                tag="auth",
                open_=True,
            )
        },
        "/v1/chat": {
            "post": _op(
                "Send a message: opens a task, or continues task_id. JSON answer when the task "
                "rests, or Server-Sent Events of the task's events with stream: true",
                _responses(200, "ChatReply", 404, 409, 413, *_BACKEND, stream=True),
                tag="tasks",
                body=_body(tasks.ChatBody),
            )
        },
        "/v1/tasks": {
            "get": _op(
                "List tasks, newest first",
                _responses(200, "TaskList", *_BACKEND),
                tag="tasks",
                params=[*_paging(), _query("status", statuses)],
            )
        },
        "/v1/tasks/{task_id}": {
            "get": _op("Get a task", _responses(200, "Task", 404, *_BACKEND), tag="tasks", params=[task_id]),
            "patch": _op(
                "Rename a task (its title)",
                _responses(200, "Task", 404, *_BACKEND),
                tag="tasks",
                params=[task_id],
                body=_body(tasks.RenameBody),
            ),
            "delete": _op(
                "Delete a task and its events (a task waiting for an approval is cancelled first; "
                "409 while it is running)",
                _responses(204, None, 404, 409, *_BACKEND),
                tag="tasks",
                params=[task_id],
            ),
        },
        "/v1/tasks/{task_id}/cancel": {
            "post": _op(
                "Cancel a task that is not final",
                _responses(200, "Task", 404, 409, *_BACKEND),
                tag="tasks",
                params=[task_id],
                body=_body(tasks.CancelBody, False),
            )
        },
        "/v1/tasks/{task_id}/events": {
            "get": _op(
                "A task's events: paged JSON, or Server-Sent Events with stream=true (or Accept: "
                "text/event-stream); after_seq (or Last-Event-ID) resumes, follow keeps the stream open "
                "after the task rests",
                _responses(200, "EventList", 404, *_BACKEND, stream=True),
                tag="tasks",
                params=[
                    task_id,
                    *_paging(1000),
                    _query("stream", BOOL),
                    _query("after_seq", {"type": "integer", "minimum": 0, "maximum": INT64_MAX}),
                    _query("follow", BOOL),
                ],
            )
        },
        "/v1/approvals": {
            "get": _op(
                "List approvals (pending by default)",
                _responses(200, "ApprovalList", *_BACKEND),
                tag="approvals",
                params=[*_paging(), _query("state", words(APPROVAL_STATES, "all")), _query("task_id", STR)],
            )
        },
        "/v1/approvals/{approval_id}": {
            "get": _op(
                "Get an approval",
                _responses(200, "Approval", 404, *_BACKEND),
                tag="approvals",
                params=[approval_id],
            )
        },
        "/v1/approvals/{approval_id}/approve": {
            "post": _op(
                "Allow the pending action once, or for the rest of its task (scope: task)",
                _responses(200, "Approval", 404, 409, *_BACKEND),
                tag="approvals",
                params=[approval_id],
                body=_body(approvals.ApproveBody, False),
            )
        },
        "/v1/approvals/{approval_id}/deny": {
            "post": _op(
                "Refuse the pending action",
                _responses(200, "Approval", 404, 409, *_BACKEND),
                tag="approvals",
                params=[approval_id],
                body=_body(approvals.DenyBody, False),
            )
        },
        "/v1/skills": {
            "get": _op(
                "List valid skills, and problems of invalid ones",
                _responses(200, "SkillList", *_BACKEND),
                tag="skills",
                params=_paging(),
            )
        },
        "/v1/skills/validate": {
            "post": _op(
                "Validate a SKILL.md text or a skill folder",
                _responses(200, "Validation", 404, *_BACKEND),
                tag="skills",
                body=_body(skills.ValidateBody),
            )
        },
        "/v1/skills/{name}": {
            "get": _op(
                "Get a skill with its body",
                _responses(200, "Skill", 404, *_BACKEND),
                tag="skills",
                params=[_path("name")],
            )
        },
        "/v1/skill-proposals": {
            "get": _op(
                "List skill proposals",
                _responses(200, "ProposalList", *_BACKEND),
                tag="skills",
                params=[*_paging(), _query("state", words(PROPOSAL_STATES, "all"))],
            ),
            "post": _op(
                "Propose a skill (stored for review, never loaded until promoted)",
                _responses(201, "Proposal", 409, *_BACKEND),
                tag="skills",
                body=_body(skills.ProposeBody),
            ),
        },
        "/v1/skill-proposals/{proposal_id}": {
            "get": _op(
                "Get a proposal",
                _responses(200, "Proposal", 404, *_BACKEND),
                tag="skills",
                params=[proposal_id],
            )
        },
        "/v1/skill-proposals/{proposal_id}/promote": {
            "post": _op(
                "Turn a valid proposal into a skill",
                _responses(200, "Proposal", 404, 409, *_BACKEND),
                tag="skills",
                params=[proposal_id],
                body=_body(skills.PromoteBody, False),
            )
        },
        "/v1/skill-proposals/{proposal_id}/reject": {
            "post": _op(
                "Reject a proposal",
                _responses(200, "Proposal", 404, 409, *_BACKEND),
                tag="skills",
                params=[proposal_id],
                body=_body(skills.RejectBody, False),
            )
        },
        "/v1/experiences": {
            "get": _op(
                "List experience records of finished tasks",
                _responses(200, "ExperienceList", *_BACKEND),
                tag="skills",
                params=[
                    *_paging(),
                    _query("outcome", words(OUTCOMES, "all")),
                    _query("task_id", STR),
                    _query("tool", STR),
                ],
            )
        },
        "/v1/memories": {
            "post": _op(
                "Remember a text: a person stating a memory, long-term unless a task or project is named "
                "(409 EMBEDDINGS_DISABLED when embeddings are off)",
                _responses(201, "Memory", 409, *_BACKEND),
                tag="memory",
                body=_body(memory.RememberBody),
            ),
            "get": _op(
                "List memories, newest first, filtered by scope, task, project, kind, tags or text",
                _responses(200, "MemoryList", 409, *_BACKEND),
                tag="memory",
                params=[
                    *_paging(),
                    _query("scope", {"type": "string", "enum": ["task", "long_term", "project"]}),
                    _query("task_id", STR),
                    _query("project", STR),
                    _query("kind", STR),
                    _query("tag", STR, "repeat for several; a memory must carry all"),
                    _query("text", STR, "the memory's text contains this (any case)"),
                    _query("collection", STR),
                ],
            ),
        },
        "/v1/memories/{memory_id}/promote": {
            "post": _op(
                "Keep a memory long-term (or in a project): only a person's request does this",
                _responses(200, "Memory", 404, 409, *_BACKEND),
                tag="memory",
                params=[_path("memory_id")],
                body=_body(memory.PromoteMemoryBody, False),
            )
        },
        "/v1/memories/search": {
            "post": _op(
                "Find the memories nearest a text or vector",
                _responses(200, "SearchResults", 409, *_BACKEND),
                tag="memory",
                body=_body(memory.SearchBody),
            )
        },
        "/v1/memories/forget": {
            "post": _op(
                "Forget the memories matching a filter, or a whole scope (with confirm naming it)",
                _responses(200, "Deleted", 409, *_BACKEND),
                tag="memory",
                body=_body(memory.ForgetBody),
            )
        },
        "/v1/memories/{memory_id}": {
            "get": _op(
                "Get a memory",
                _responses(200, "Memory", 404, 409, *_BACKEND),
                tag="memory",
                params=[_path("memory_id"), _query("collection", STR)],
            ),
            "patch": _op(
                "Change a memory's text, kind, tags or metadata (a new text is embedded again)",
                _responses(200, "Memory", 404, 409, *_BACKEND),
                tag="memory",
                params=[_path("memory_id")],
                body=_body(memory.UpdateBody),
            ),
            "delete": _op(
                "Forget a memory",
                _responses(200, "Deleted", 404, 409, *_BACKEND),
                tag="memory",
                params=[_path("memory_id"), _query("collection", STR)],
            ),
        },
        "/v1/chat/completions": {
            "post": _op(
                "OpenAI-compatible chat completion: runs a DuckLM task (streams chat.completion.chunk events "
                "ending with [DONE] when stream is true)",
                _responses(200, "ChatCompletion", 404, 409, 504, *_BACKEND, stream=True),
                tag="openai",
                body=_body(completions.CompletionBody),
            )
        },
        "/v1/models": {"get": _op("The one model DuckLM serves", _responses(200, "ModelList"), tag="openai")},
        "/v1/models/{model}": {
            "get": _op("Get a model", _responses(200, "Model", 404), tag="openai", params=[_path("model")])
        },
    }


_BODIES: tuple[type[BaseModel], ...] = (
    auth.LoginBody,
    tasks.ChatBody,
    tasks.CancelBody,
    approvals.ApproveBody,
    approvals.DenyBody,
    skills.ValidateBody,
    skills.ProposeBody,
    skills.PromoteBody,
    skills.RejectBody,
    memory.RememberBody,
    memory.SearchBody,
    memory.ForgetBody,
    memory.UpdateBody,
    memory.PromoteMemoryBody,
    completions.CompletionBody,
)


def _body_schemas() -> dict[str, Schema]:
    schemas: dict[str, Schema] = {}
    for model in _BODIES:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _with_site_refusals(paths: dict[str, Any]) -> dict[str, Any]:
    """Adds what services/gateway/sites.py answers before any route: 403 for a cross-site
    request and 415 for one that is not JSON, on every operation that changes something."""
    for operations in paths.values():
        for method, operation in operations.items():
            if method not in ("get", "head", "options"):
                for status in (403, 415):
                    operation["responses"].setdefault(
                        str(status), {"description": _ERROR_TEXT[status], "content": _json("Error")}
                    )
    return paths


@functools.cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "DuckLM gateway",
            "version": "1.0.0",
            "description": "REST, Server-Sent Events and an OpenAI-compatible endpoint over DuckLM's "
            'gRPC services. Errors are {"error": {"code", "message"}}; see docs/rest-api.md.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _with_site_refusals(_paths()),
        "components": {
            "schemas": {**SCHEMAS, **_body_schemas()},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "DUCKLM_GATEWAY_TOKEN, when the gateway has one",
                }
            },
        },
    }
