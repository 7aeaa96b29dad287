"""The MemoryService servicer (proto <-> domain, nothing more) and the server factory."""

from __future__ import annotations

import grpc
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc

from services.common.errors import InvalidArgument, grpc_errors
from services.common.protos import from_struct, to_struct, to_timestamp
from services.common.server import GrpcServer, ServiceBinding, build_server
from services.memory.backend import open_backend
from services.memory.config import Settings
from services.memory.embeddings import RuntimeEmbedder
from services.memory.memories import Memories
from services.memory.records import MemoryFilter, MemoryRecord

__all__ = ["MemoryServicer", "create_server"]

SERVICE_NAME = memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name


def _memory(record: MemoryRecord) -> memory_pb2.Memory:
    return memory_pb2.Memory(
        id=record.id,
        text=record.text,
        task_id=record.task_id,
        kind=record.kind,
        tags=record.tags,
        metadata=to_struct(record.metadata),
        create_time=to_timestamp(record.create_time),
    )


def _filter(message: memory_pb2.MemoryFilter) -> MemoryFilter:
    return MemoryFilter(task_id=message.task_id, kind=message.kind, tags=tuple(message.tags))


class MemoryServicer(memory_pb2_grpc.MemoryServiceServicer):
    def __init__(self, memories: Memories) -> None:
        self._memories = memories

    @grpc_errors
    async def Remember(
        self, request: memory_pb2.RememberRequest, context: grpc.aio.ServicerContext
    ) -> memory_pb2.Memory:
        record = await self._memories.remember(
            request.text,
            task_id=request.task_id,
            kind=request.kind,
            tags=tuple(request.tags),
            metadata=from_struct(request.metadata),
            collection=request.collection,
        )
        return _memory(record)

    @grpc_errors
    async def Search(
        self, request: memory_pb2.SearchRequest, context: grpc.aio.ServicerContext
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
            collection=request.collection,
        )
        return memory_pb2.SearchResponse(
            results=[
                memory_pb2.ScoredMemory(memory=_memory(hit.record), score=hit.score) for hit in found.results
            ],
            embedding_ms=found.embedding_ms,
            search_ms=found.search_ms,
        )

    @grpc_errors
    async def GetMemory(
        self, request: memory_pb2.GetMemoryRequest, context: grpc.aio.ServicerContext
    ) -> memory_pb2.Memory:
        return _memory(await self._memories.get(request.memory_id, collection=request.collection))

    @grpc_errors
    async def Forget(
        self, request: memory_pb2.ForgetRequest, context: grpc.aio.ServicerContext
    ) -> memory_pb2.ForgetResponse:
        which = request.WhichOneof("target")
        if which is None:
            raise InvalidArgument("set what to forget: `memory_id` or `filter`")
        target = request.memory_id if which == "memory_id" else _filter(request.filter)
        deleted = await self._memories.forget(target, collection=request.collection)
        return memory_pb2.ForgetResponse(deleted=deleted)

    @grpc_errors
    async def ListCollections(
        self, request: memory_pb2.ListCollectionsRequest, context: grpc.aio.ServicerContext
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
    memories = Memories(backend, embedder, default_collection=settings.collection)
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
