"""Memory: remember a text, search by text (or vector), get, forget by id or by filter.

When embeddings are turned off the memory service answers FAILED_PRECONDITION with reason
EMBEDDINGS_DISABLED; clients get a 409 whose error carries that reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from ducklm.memory.v1 import memory_pb2
from pydantic import ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.protos import to_struct
from services.gateway.convert import memory_json
from services.gateway.errors import call
from services.gateway.inputs import Body, query_str, read_body
from services.gateway.routes.tasks import backends_of

__all__ = ["routes"]

Name = Annotated[str, Field(max_length=200)]
Tags = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)]


class Filter(Body):
    """Metadata conditions; every one given must match."""

    task_id: str = Field(default="", max_length=128)
    kind: Name = ""
    tags: Tags = Field(default_factory=list)

    def to_proto(self) -> memory_pb2.MemoryFilter:
        return memory_pb2.MemoryFilter(task_id=self.task_id, kind=self.kind, tags=self.tags)

    def is_empty(self) -> bool:
        return not (self.task_id or self.kind or self.tags)


class RememberBody(Body):
    text: str = Field(min_length=1, max_length=32_000)
    task_id: str = Field(default="", max_length=128)
    kind: Name = ""
    tags: Tags = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    collection: Name = ""


class SearchBody(Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["vector"]}]}
    )

    # Exactly one of: a text (embedded by the runtime), or a ready vector.
    text: str | None = Field(default=None, min_length=1, max_length=32_000)
    vector: list[Annotated[float, Field(ge=-1e30, le=1e30)]] | None = Field(
        default=None, min_length=1, max_length=8192
    )
    top_k: int = Field(default=5, ge=1, le=100)
    filter: Filter = Field(default_factory=Filter)
    score_threshold: float = Field(default=0.0, ge=-1.0, le=1.0)
    collection: Name = ""

    @model_validator(mode="after")
    def _one_query(self) -> SearchBody:
        if (self.text is None) == (self.vector is None):
            raise ValueError("give exactly one of text or vector")
        return self


class ForgetBody(Body):
    filter: Filter
    collection: Name = ""

    @model_validator(mode="after")
    def _not_everything(self) -> ForgetBody:
        if self.filter.is_empty():
            raise ValueError(
                "filter must name a task_id, a kind or tags (an empty filter would forget everything)"
            )
        return self


async def remember(request: Request) -> Response:
    body = await read_body(request, RememberBody)
    backends = backends_of(request)
    memory = await call(
        "memory",
        backends.memory.Remember(
            memory_pb2.RememberRequest(
                text=body.text,
                task_id=body.task_id,
                kind=body.kind,
                tags=body.tags,
                metadata=to_struct(body.metadata),
                collection=body.collection,
            ),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(memory_json(memory), status_code=201)


async def search(request: Request) -> Response:
    body = await read_body(request, SearchBody)
    backends = backends_of(request)
    message = memory_pb2.SearchRequest(
        top_k=body.top_k,
        filter=body.filter.to_proto(),
        score_threshold=body.score_threshold,
        collection=body.collection,
    )
    if body.text is not None:
        message.text = body.text
    else:
        message.vector.values.extend(body.vector or [])
    reply = await call("memory", backends.memory.Search(message, timeout=backends.timeout))
    return JSONResponse(
        {
            "results": [{"memory": memory_json(item.memory), "score": item.score} for item in reply.results],
            "embedding_ms": reply.embedding_ms,
            "search_ms": reply.search_ms,
        }
    )


async def get_memory(request: Request) -> Response:
    backends = backends_of(request)
    memory = await call(
        "memory",
        backends.memory.GetMemory(
            memory_pb2.GetMemoryRequest(
                memory_id=request.path_params["memory_id"],
                collection=query_str(request, "collection", max_length=200),
            ),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(memory_json(memory))


async def forget_one(request: Request) -> Response:
    backends = backends_of(request)
    reply = await call(
        "memory",
        backends.memory.Forget(
            memory_pb2.ForgetRequest(
                memory_id=request.path_params["memory_id"],
                collection=query_str(request, "collection", max_length=200),
            ),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse({"deleted": reply.deleted})


async def forget_matching(request: Request) -> Response:
    body = await read_body(request, ForgetBody)
    backends = backends_of(request)
    reply = await call(
        "memory",
        backends.memory.Forget(
            memory_pb2.ForgetRequest(filter=body.filter.to_proto(), collection=body.collection),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse({"deleted": reply.deleted})


routes = [
    Route("/v1/memories", remember, methods=["POST"]),
    Route("/v1/memories/search", search, methods=["POST"]),
    Route("/v1/memories/forget", forget_matching, methods=["POST"]),
    Route("/v1/memories/{memory_id}", get_memory, methods=["GET"]),
    Route("/v1/memories/{memory_id}", forget_one, methods=["DELETE"]),
]
