"""Fake runtimes for the memory tests: EmbeddingService servers over real gRPC on port 0.

The hashing embedder puts each word into one of `dimension` buckets, so texts sharing words
score higher than texts sharing none: enough meaning for search tests, fully deterministic.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from ducklm.memory.v1 import memory_pb2_grpc
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.server import GrpcServer, ServiceBinding, build_server

EMBEDDING_SERVICE = "ducklm.runtime.v1.EmbeddingService"
DISABLED_DETAILS = "no `embedding` role is configured"


def hash_embedding(text: str, dimension: int) -> list[float]:
    vector = [0.0] * dimension
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimension] += 1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


class HashingEmbeddingService(runtime_pb2_grpc.EmbeddingServiceServicer):
    """A runtime with an `embedding` role. `dimension` and `model` may be changed mid-test to
    act like a runtime whose embedding model was swapped."""

    def __init__(self, dimension: int, model: str) -> None:
        self.dimension = dimension
        self.model = model
        self.calls = 0

    async def Embed(
        self,
        request: runtime_pb2.EmbedRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.EmbedRequest, runtime_pb2.EmbedResponse],
    ) -> runtime_pb2.EmbedResponse:
        self.calls += 1
        return runtime_pb2.EmbedResponse(
            embeddings=[
                runtime_pb2.Embedding(values=hash_embedding(text, self.dimension)) for text in request.texts
            ],
            model=self.model,
            dimension=self.dimension,
        )


class DisabledEmbeddingService(runtime_pb2_grpc.EmbeddingServiceServicer):
    """A runtime without an `embedding` role, answering exactly as the runtime does."""

    def __init__(self) -> None:
        self.calls = 0

    async def Embed(
        self,
        request: runtime_pb2.EmbedRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.EmbedRequest, runtime_pb2.EmbedResponse],
    ) -> runtime_pb2.EmbedResponse:
        self.calls += 1
        await context.send_initial_metadata((("ducklm-error-reason", "EMBEDDINGS_DISABLED"),))
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, DISABLED_DETAILS)
        raise AssertionError("abort returns only by raising")


@dataclass
class FakeRuntime:
    server: GrpcServer
    servicer: HashingEmbeddingService | DisabledEmbeddingService

    @property
    def address(self) -> str:
        return self.server.address


async def start_runtime(
    servicer: HashingEmbeddingService | DisabledEmbeddingService,
) -> FakeRuntime:
    binding = ServiceBinding(
        servicer, runtime_pb2_grpc.add_EmbeddingServiceServicer_to_server, EMBEDDING_SERVICE
    )
    return FakeRuntime(await build_server([binding], "127.0.0.1:0"), servicer)


@dataclass
class MemoryServer:
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: memory_pb2_grpc.MemoryServiceAsyncStub
    stopped: bool = False

    async def stop(self) -> None:
        """Stops the server as SIGTERM would: the backend flushes and closes."""
        if not self.stopped:
            self.stopped = True
            await self.channel.close()
            await self.server.stop(0)


StartMemory = Callable[..., Awaitable[MemoryServer]]
