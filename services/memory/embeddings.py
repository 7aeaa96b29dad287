"""Vectors for texts, from the runtime's `ducklm.runtime.v1.EmbeddingService/Embed` over gRPC.

Only the runtime talks to llama-server; this module never does. It turns the runtime's answers
into vectors or into one of the service's typed errors, with a message that says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.channels import open_channel
from services.common.errors import (
    DeadlineExceeded,
    DuckLMError,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)

__all__ = ["EMBEDDINGS_DISABLED", "Embedder", "Embeddings", "RuntimeEmbedder"]

EMBEDDINGS_DISABLED = "EMBEDDINGS_DISABLED"
_REASON_KEY = "ducklm-error-reason"
_SERVICE = "ducklm.runtime.v1.EmbeddingService"


@dataclass(frozen=True)
class Embeddings:
    """One vector per text, all `dimension` long, made by `model`."""

    vectors: list[list[float]]
    model: str
    dimension: int


class Embedder(Protocol):
    async def embed(self, texts: Sequence[str]) -> Embeddings: ...

    async def close(self) -> None: ...


class RuntimeEmbedder:
    """Asks the runtime at `address` for embeddings; every call has a deadline of `timeout_s`."""

    def __init__(self, address: str, *, timeout_s: float = 30.0) -> None:
        self.address = address
        self._timeout_s = timeout_s
        # Embed has no side effects, so the channel may retry it on UNAVAILABLE.
        self._channel = open_channel(address, idempotent_services=[_SERVICE])
        self._stub = runtime_pb2_grpc.EmbeddingServiceStub(self._channel)

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        try:
            reply = await self._stub.Embed(
                runtime_pb2.EmbedRequest(texts=list(texts)), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        vectors = [list(embedding.values) for embedding in reply.embeddings]
        dimension = reply.dimension or (len(vectors[0]) if vectors else 0)
        if len(vectors) != len(texts) or dimension <= 0 or any(len(v) != dimension for v in vectors):
            raise Unavailable(
                f"the runtime at {self.address} answered Embed with {len(vectors)} vectors of "
                f"dimension {dimension} for {len(texts)} texts; it is misbehaving, check its log",
                reason="EMBEDDINGS_MALFORMED",
            )
        return Embeddings(vectors=vectors, model=reply.model, dimension=dimension)

    async def close(self) -> None:
        await self._channel.close()

    def _error(self, exc: grpc.aio.AioRpcError) -> DuckLMError:
        code, details = exc.code(), exc.details() or ""
        metadata = {str(key): str(value) for key, value in (exc.initial_metadata() or ())}
        if code == grpc.StatusCode.FAILED_PRECONDITION and metadata.get(_REASON_KEY) == EMBEDDINGS_DISABLED:
            return FailedPrecondition(
                "embeddings are disabled: the runtime has no `embedding` role, so the memory service "
                "cannot turn text into vectors and stored nothing. Enable them by adding an "
                "`embedding` role to config/models.yaml and restarting the runtime "
                f"(runtime at {self.address} said: {details})",
                reason=EMBEDDINGS_DISABLED,
            )
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return InvalidArgument(f"the runtime refused to embed the text: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceeded(
                f"the runtime at {self.address} did not embed the text within {self._timeout_s}s"
            )
        return Unavailable(
            f"could not get embeddings from the runtime at {self.address} "
            f"({code.name}: {details}); is the runtime running?",
            reason="RUNTIME_UNAVAILABLE",
        )

