"""The MemoryService servicer (proto <-> domain, nothing more) and the server factory."""

from __future__ import annotations

from typing import Any

import grpc
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc

from services.common.errors import InvalidArgument, grpc_errors
from services.common.protos import from_struct, to_struct, to_timestamp
from services.common.server import GrpcServer, ServiceBinding, build_server
from services.memory.backend import open_backend
from services.memory.config import Settings
from services.memory.embeddings import RuntimeEmbedder
from services.memory.memories import Memories, SearchResult
from services.memory.records import MemoryFilter, MemoryRecord, Scope, ScopeRef

__all__ = ["MemoryServicer", "create_server"]

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE_NAME = memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name

_SCOPES: dict[int, Scope] = {
    memory_pb2.MEMORY_SCOPE_TASK: "task",
    memory_pb2.MEMORY_SCOPE_LONG_TERM: "long_term",
    memory_pb2.MEMORY_SCOPE_PROJECT: "project",
}
_SCOPE_ENUMS = {name: number for number, name in _SCOPES.items()}


def _scope(value: int, *, default: Scope | None = None) -> Scope | None:
    if value == memory_pb2.MEMORY_SCOPE_UNSPECIFIED:
        return default
    if value not in _SCOPES:
        raise InvalidArgument(f"unknown scope {value}: use MEMORY_SCOPE_TASK, _LONG_TERM or _PROJECT")
    return _SCOPES[value]


def _scope_ref(message: memory_pb2.ScopeRef) -> ScopeRef:
    scope = _scope(message.scope)
    if scope is None:
        raise InvalidArgument("a scope must say which: MEMORY_SCOPE_TASK, _LONG_TERM or _PROJECT")
    return ScopeRef(scope, task_id=message.task_id, project=message.project)


def _memory(record: MemoryRecord) -> memory_pb2.Memory:
    memory = memory_pb2.Memory(
        id=record.id,
        text=record.text,
        task_id=record.task_id,
        kind=record.kind,
        tags=record.tags,
        metadata=to_struct(record.metadata),
        create_time=to_timestamp(record.create_time),
        scope=_SCOPE_ENUMS[record.scope],  # type: ignore[arg-type]
        project=record.project,
        collection=record.collection,
    )
    if record.update_time is not None:
        memory.update_time.CopyFrom(to_timestamp(record.update_time))
    return memory


def _filter(message: memory_pb2.MemoryFilter) -> MemoryFilter:
    return MemoryFilter(
        task_id=message.task_id, kind=message.kind, tags=tuple(message.tags),
        scope=_scope(message.scope), project=message.project, text=message.text,
    )


def _search_response(found: SearchResult) -> memory_pb2.SearchResponse:
    return memory_pb2.SearchResponse(
        results=[memory_pb2.ScoredMemory(memory=_memory(hit.record), score=hit.score) for hit in found.results],
        embedding_ms=found.embedding_ms,
        search_ms=found.search_ms,
        score_threshold=found.score_threshold,
    )


class MemoryServicer(memory_pb2_grpc.MemoryServiceServicer):
    def __init__(self, memories: Memories) -> None:
        self._memories = memories

    @grpc_errors
    async def Remember(
        self, request: memory_pb2.RememberRequest, context: Context
    ) -> memory_pb2.Memory:
        record = await self._memories.remember(
            request.text,
            scope=_scope(request.scope) or ("task" if request.task_id else "long_term"),
            task_id=request.task_id,
            project=request.project,
            kind=request.kind,
            tags=tuple(request.tags),
            metadata=from_struct(request.metadata),
            collection=request.collection,
        )
        return _memory(record)

    @grpc_errors
    async def Search(
        self, request: memory_pb2.SearchRequest, context: Context
    ) -> memory_pb2.SearchResponse:
        which = request.WhichOneof("query")
        if which is None:
            raise InvalidArgument("set the query: `text` or `vector`")
        query: str | list[float] = request.text if which == "text" else list(request.vector.values)
        found = await self._memories.search(
            query,
            top_k=request.top_k,
            memory_filter=_filter(request.filter) if request.HasField("filter") else None,
            score_threshold=request.score_threshold,
            scopes=[_scope_ref(scope) for scope in request.scopes],
            collection=request.collection,
        )
        return _search_response(found)

    @grpc_errors
    async def Recall(
        self, request: memory_pb2.RecallRequest, context: Context
    ) -> memory_pb2.SearchResponse:
        return _search_response(await self._memories.recall(request.text, task_id=request.task_id, top_k=request.top_k))

    @grpc_errors
    async def GetMemory(
        self, request: memory_pb2.GetMemoryRequest, context: Context
    ) -> memory_pb2.Memory:
        return _memory(await self._memories.get(request.memory_id, collection=request.collection))

    @grpc_errors
    async def ListMemories(
        self, request: memory_pb2.ListMemoriesRequest, context: Context
    ) -> memory_pb2.ListMemoriesResponse:
        page = await self._memories.list_memories(
            _filter(request.filter) if request.HasField("filter") else None,
            page_size=request.page_size, page_token=request.page_token, collection=request.collection,
        )
        return memory_pb2.ListMemoriesResponse(
            memories=[_memory(record) for record in page.memories],
            next_page_token=page.next_page_token,
            total_size=page.total,
        )

    @grpc_errors
    async def UpdateMemory(
        self, request: memory_pb2.UpdateMemoryRequest, context: Context
    ) -> memory_pb2.Memory:
        record = await self._memories.update(
            request.memory_id, list(request.update_mask), text=request.text, kind=request.kind,
            tags=tuple(request.tags), metadata=from_struct(request.metadata), collection=request.collection,
        )
        return _memory(record)

    @grpc_errors
    async def PromoteMemory(
        self, request: memory_pb2.PromoteMemoryRequest, context: Context
    ) -> memory_pb2.Memory:
        record = await self._memories.promote(
            request.memory_id, scope=_scope(request.scope, default="long_term") or "long_term",
            project=request.project, collection=request.collection,
        )
        return _memory(record)

    @grpc_errors
    async def Forget(
        self, request: memory_pb2.ForgetRequest, context: Context
    ) -> memory_pb2.ForgetResponse:
        which = request.WhichOneof("target")
        target: str | MemoryFilter | ScopeRef
        if which == "memory_id":
            target = request.memory_id
        elif which == "filter":
            target = _filter(request.filter)
        elif which == "scope":
            target = _scope_ref(request.scope)
        else:
            raise InvalidArgument("set what to forget: `memory_id`, `filter` or `scope` (with `confirm`)")
        deleted = await self._memories.forget(target, confirm=request.confirm, collection=request.collection)
        return memory_pb2.ForgetResponse(deleted=deleted)

    @grpc_errors
    async def ListCollections(
        self, request: memory_pb2.ListCollectionsRequest, context: Context
    ) -> memory_pb2.ListCollectionsResponse:
        infos = await self._memories.collections()
        return memory_pb2.ListCollectionsResponse(
            collections=[
                memory_pb2.Collection(
                    name=info.spec.name,
                    dimension=info.spec.dimension,
                    count=info.count,
                    backend=info.backend,
                    embedding_model=info.spec.embedding_model,
                )
                for info in infos
            ]
        )


async def create_server(settings: Settings) -> GrpcServer:
    """Opens the backend, connects to the runtime for embeddings, and starts serving."""
    backend = await open_backend(settings)
    embedder = RuntimeEmbedder(settings.runtime_address, timeout_s=settings.embed_timeout_s)
    memories = Memories(backend, embedder, default_collection=settings.collection,
                        recall_threshold=settings.recall_score_threshold)
    binding = ServiceBinding(
        MemoryServicer(memories), memory_pb2_grpc.add_MemoryServiceServicer_to_server, SERVICE_NAME
    )
    try:
        server = await build_server([binding], settings.address)
    except BaseException:
        await embedder.close()
        await backend.close()
        raise
    server.add_cleanup(embedder.close)
    server.add_cleanup(backend.close)
    return server
