"""Memory: remember, search, list, get, update, promote and forget memories.

Every memory has a scope: "task" (one conversation, `task_id`), "long_term" (the user's,
recalled in every conversation) or "project" (named, `project`). What the model remembers is
kept in its task's scope; a POST here is a person stating a memory, so without a task_id it goes
to long-term. Promoting (POST /v1/memories/{id}/promote) is how a person keeps a task's memory.
When embeddings are turned off the memory service answers FAILED_PRECONDITION with reason
EMBEDDINGS_DISABLED; clients get a 409 whose error carries that reason.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ducklm.memory.v1 import memory_pb2
from pydantic import ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import Response

from services.common.protos import to_struct
from services.gateway.api import ApiRoute, Doc, backends_of, paging, query, unary
from services.gateway.convert import memory_json
from services.gateway.errors import ApiError
from services.gateway.inputs import Body, query_int, query_str, read_body
from services.gateway.openapi_schemas import STR

__all__ = ["routes"]

# The memory service's own limits (services/memory/limits.py), stated again for the REST schema.
MAX_TEXT_CHARS = 4000
Name = Annotated[str, Field(max_length=200)]
Tags = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)]
ScopeName = Literal["task", "long_term", "project"]
Project = Annotated[str, Field(max_length=64)]

SCOPES = {
    "task": memory_pb2.MEMORY_SCOPE_TASK,
    "long_term": memory_pb2.MEMORY_SCOPE_LONG_TERM,
    "project": memory_pb2.MEMORY_SCOPE_PROJECT,
}


class Scope(Body):
    """One scope: a task's (task_id), the long-term one, or a project's (project)."""

    scope: ScopeName
    task_id: str = Field(default="", max_length=128)
    project: Project = ""

    def to_proto(self) -> memory_pb2.ScopeRef:
        return memory_pb2.ScopeRef(scope=SCOPES[self.scope], task_id=self.task_id, project=self.project)


class Filter(Body):
    """Conditions; every one given must match. `text`: the memory's text contains it (any case)."""

    scope: ScopeName | None = None
    task_id: str = Field(default="", max_length=128)
    project: Project = ""
    kind: Name = ""
    tags: Tags = Field(default_factory=list)
    text: Name = ""

    def to_proto(self) -> memory_pb2.MemoryFilter:
        return memory_pb2.MemoryFilter(
            scope=SCOPES[self.scope] if self.scope else memory_pb2.MEMORY_SCOPE_UNSPECIFIED,
            task_id=self.task_id, project=self.project, kind=self.kind, tags=self.tags, text=self.text,
        )

    def is_empty(self) -> bool:
        return not (self.scope or self.task_id or self.project or self.kind or self.tags or self.text)


class RememberBody(Body):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    # Default: "task" when task_id is given, else "long_term" (a person stating a memory).
    scope: ScopeName | None = None
    task_id: str = Field(default="", max_length=128)
    project: Project = ""
    kind: Name = ""
    tags: Tags = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    collection: Name = ""


class SearchBody(Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["vector"]}]}
    )

    # Exactly one of: a text (embedded by the runtime), or a ready vector.
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)
    vector: list[Annotated[float, Field(ge=-1e30, le=1e30)]] | None = Field(
        default=None, min_length=1, max_length=8192
    )
    top_k: int = Field(default=5, ge=1, le=100)
    filter: Filter = Field(default_factory=Filter)
    # Search only these scopes (any of them); empty searches every scope.
    scopes: list[Scope] = Field(default_factory=list, max_length=20)
    score_threshold: float = Field(default=0.0, ge=-1.0, le=1.0)
    collection: Name = ""

    @model_validator(mode="after")
    def _one_query(self) -> SearchBody:
        if (self.text is None) == (self.vector is None):
            raise ValueError("give exactly one of text or vector")
        return self


class UpdateBody(Body):
    """The fields given are changed; a new text is embedded again."""

    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)
    kind: Name | None = None
    tags: Tags | None = None
    metadata: dict[str, Any] | None = None
    collection: Name = ""

    @model_validator(mode="after")
    def _something(self) -> UpdateBody:
        if not self.model_fields_set - {"collection"}:
            raise ValueError("give at least one of text, kind, tags or metadata")
        return self


class PromoteMemoryBody(Body):
    scope: Literal["long_term", "project"] = "long_term"
    project: Project = ""
    collection: Name = ""


class ForgetBody(Body):
    """Exactly one of: `filter` (memories matching it), or `scope` with `confirm` naming it
    ("long_term", "task:<task_id>", "project:<name>") to forget that whole scope."""

    filter: Filter | None = None
    scope: Scope | None = None
    confirm: Name = ""
    collection: Name = ""

    @model_validator(mode="after")
    def _one_target(self) -> ForgetBody:
        if (self.filter is None) == (self.scope is None):
            raise ValueError("give exactly one of filter or scope (with confirm)")
        if self.filter is not None and self.filter.is_empty():
            raise ValueError(
                "filter must name a scope, task_id, project, kind, tags or text (an empty filter would "
                "forget everything)"
            )
        return self


def _remember_scope(body: RememberBody) -> int:
    if body.scope:
        return SCOPES[body.scope]
    return memory_pb2.MEMORY_SCOPE_TASK if body.task_id else memory_pb2.MEMORY_SCOPE_LONG_TERM


async def remember(request: Request) -> Response:
    body = await read_body(request, RememberBody)
    message = memory_pb2.RememberRequest(
        text=body.text,
        scope=_remember_scope(body),  # type: ignore[arg-type]
        task_id=body.task_id,
        project=body.project,
        kind=body.kind,
        tags=body.tags,
        metadata=to_struct(body.metadata),
        collection=body.collection,
    )
    return await unary(request, "memory", backends_of(request).memory.Remember, message, memory_json, status=201)


async def list_memories(request: Request) -> Response:
    scope = query_str(request, "scope", max_length=20)
    if scope and scope not in SCOPES:
        raise ApiError(400, "INVALID_ARGUMENT", f"query parameter scope must be one of: {', '.join(SCOPES)}")
    memory_filter = memory_pb2.MemoryFilter(
        scope=SCOPES.get(scope, memory_pb2.MEMORY_SCOPE_UNSPECIFIED),
        task_id=query_str(request, "task_id", max_length=128),
        project=query_str(request, "project", max_length=64),
        kind=query_str(request, "kind", max_length=200),
        tags=[tag for tag in request.query_params.getlist("tag") if tag],
        text=query_str(request, "text", max_length=200),
    )
    message = memory_pb2.ListMemoriesRequest(
        filter=memory_filter,
        page_size=query_int(request, "page_size", 0, maximum=500),
        page_token=query_str(request, "page_token"),
        collection=query_str(request, "collection", max_length=200),
    )
    return await unary(request, "memory", backends_of(request).memory.ListMemories, message, _memory_list)


def _memory_list(reply: memory_pb2.ListMemoriesResponse) -> dict[str, Any]:
    return {
        "memories": [memory_json(memory) for memory in reply.memories],
        "next_page_token": reply.next_page_token,
        "total_size": reply.total_size,
    }


async def search(request: Request) -> Response:
    body = await read_body(request, SearchBody)
    message = memory_pb2.SearchRequest(
        top_k=body.top_k,
        filter=body.filter.to_proto(),
        score_threshold=body.score_threshold,
        scopes=[scope.to_proto() for scope in body.scopes],
        collection=body.collection,
    )
    if body.text is not None:
        message.text = body.text
    else:
        message.vector.values.extend(body.vector or [])
    return await unary(request, "memory", backends_of(request).memory.Search, message, _search_results)


def _search_results(reply: memory_pb2.SearchResponse) -> dict[str, Any]:
    return {
        "results": [{"memory": memory_json(item.memory), "score": item.score} for item in reply.results],
        "embedding_ms": reply.embedding_ms,
        "search_ms": reply.search_ms,
    }


async def get_memory(request: Request) -> Response:
    message = memory_pb2.GetMemoryRequest(
        memory_id=request.path_params["memory_id"], collection=query_str(request, "collection", max_length=200)
    )
    return await unary(request, "memory", backends_of(request).memory.GetMemory, message, memory_json)


async def update_memory(request: Request) -> Response:
    body = await read_body(request, UpdateBody)
    message = memory_pb2.UpdateMemoryRequest(
        memory_id=request.path_params["memory_id"],
        update_mask=sorted(body.model_fields_set - {"collection"}),
        text=body.text or "",
        kind=body.kind or "",
        tags=body.tags or [],
        metadata=to_struct(body.metadata or {}),
        collection=body.collection,
    )
    return await unary(request, "memory", backends_of(request).memory.UpdateMemory, message, memory_json)


async def promote_memory(request: Request) -> Response:
    body = await read_body(request, PromoteMemoryBody, allow_empty=True)
    message = memory_pb2.PromoteMemoryRequest(
        memory_id=request.path_params["memory_id"],
        scope=SCOPES[body.scope],
        project=body.project,
        collection=body.collection,
    )
    return await unary(request, "memory", backends_of(request).memory.PromoteMemory, message, memory_json)


async def forget_one(request: Request) -> Response:
    message = memory_pb2.ForgetRequest(
        memory_id=request.path_params["memory_id"], collection=query_str(request, "collection", max_length=200)
    )
    return await unary(request, "memory", backends_of(request).memory.Forget, message, _deleted)


def _deleted(reply: memory_pb2.ForgetResponse) -> dict[str, Any]:
    return {"deleted": reply.deleted}


async def forget_matching(request: Request) -> Response:
    body = await read_body(request, ForgetBody)
    message = memory_pb2.ForgetRequest(confirm=body.confirm, collection=body.collection)
    if body.scope is not None:
        message.scope.CopyFrom(body.scope.to_proto())
    else:
        assert body.filter is not None
        message.filter.CopyFrom(body.filter.to_proto())
    return await unary(request, "memory", backends_of(request).memory.Forget, message, _deleted)


routes = [
    ApiRoute("/v1/memories", "POST", remember, Doc(
        "Remember a text: a person stating a memory, long-term unless a task or project is named "
        "(409 EMBEDDINGS_DISABLED when embeddings are off)",
        "memory", ok=201, reply="Memory", errors=(409,), body=RememberBody,
    )),
    ApiRoute("/v1/memories", "GET", list_memories, Doc(
        "List memories, newest first, filtered by scope, task, project, kind, tags or text", "memory",
        reply="MemoryList", errors=(409,),
        params=(
            *paging(),
            query("scope", {"type": "string", "enum": ["task", "long_term", "project"]}),
            query("task_id"),
            query("project"),
            query("kind"),
            query("tag", STR, "repeat for several; a memory must carry all"),
            query("text", STR, "the memory's text contains this (any case)"),
            query("collection"),
        ),
    )),
    ApiRoute("/v1/memories/search", "POST", search, Doc(
        "Find the memories nearest a text or vector", "memory", reply="SearchResults", errors=(409,),
        body=SearchBody,
    )),
    ApiRoute("/v1/memories/forget", "POST", forget_matching, Doc(
        "Forget the memories matching a filter, or a whole scope (with confirm naming it)", "memory",
        reply="Deleted", errors=(409,), body=ForgetBody,
    )),
    ApiRoute("/v1/memories/{memory_id}", "GET", get_memory, Doc(
        "Get a memory", "memory", reply="Memory", errors=(404, 409), params=(query("collection"),),
    )),
    ApiRoute("/v1/memories/{memory_id}", "PATCH", update_memory, Doc(
        "Change a memory's text, kind, tags or metadata (a new text is embedded again)", "memory",
        reply="Memory", errors=(404, 409), body=UpdateBody,
    )),
    ApiRoute("/v1/memories/{memory_id}", "DELETE", forget_one, Doc(
        "Forget a memory", "memory", reply="Deleted", errors=(404, 409), params=(query("collection"),),
    )),
    ApiRoute("/v1/memories/{memory_id}/promote", "POST", promote_memory, Doc(
        "Keep a memory long-term (or in a project): only a person's request does this", "memory",
        reply="Memory", errors=(404, 409), body=PromoteMemoryBody, body_required=False,
    )),
]
