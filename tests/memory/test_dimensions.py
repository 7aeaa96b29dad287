"""A collection's dimension and embedding model are fixed when it is created: another model's
vectors are refused, clearly, before anything is written, and the check survives restarts."""

from __future__ import annotations

import grpc
import pytest
from ducklm.memory.v1 import memory_pb2

from .fakes import FakeRuntime, HashingEmbeddingService, MemoryServer, StartMemory


async def count(memory: MemoryServer) -> dict[str, tuple[int, int, str]]:
    listed = await memory.stub.ListCollections(memory_pb2.ListCollectionsRequest())
    return {c.name: (c.dimension, c.count, c.embedding_model) for c in listed.collections}


def expect_refusal(error: grpc.aio.AioRpcError, reason: str) -> str:
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(error.initial_metadata() or ()).get("ducklm-error-reason") == reason
    return error.details() or ""


async def test_dimension_follows_the_first_embedding(memory: MemoryServer) -> None:
    await memory.stub.Remember(memory_pb2.RememberRequest(text="first memory"))
    assert await count(memory) == {"memories": (64, 1, "fake-hash-64")}


async def test_a_model_with_another_dimension_is_refused(memory: MemoryServer, runtime: FakeRuntime) -> None:
    await memory.stub.Remember(memory_pb2.RememberRequest(text="made with the 64-d model"))
    assert isinstance(runtime.servicer, HashingEmbeddingService)
    runtime.servicer.dimension, runtime.servicer.model = 32, "fake-hash-32"

    for request, call in [
        (memory_pb2.RememberRequest(text="made with the 32-d model"), memory.stub.Remember),
        (memory_pb2.SearchRequest(text="made with"), memory.stub.Search),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call(request)
        details = expect_refusal(error.value, "EMBEDDING_DIMENSION_MISMATCH")
        assert details.startswith(
            "embedding dimension mismatch: collection 'memories' holds 64-dimensional vectors from "
            "model 'fake-hash-64', but the runtime's embedding model 'fake-hash-32' gives 32."
        )
        assert "use a new collection" in details
    assert await count(memory) == {"memories": (64, 1, "fake-hash-64")}

    # A new collection takes the new model.
    await memory.stub.Remember(memory_pb2.RememberRequest(text="made with the 32-d model", collection="v2"))
    assert await count(memory) == {"memories": (64, 1, "fake-hash-64"), "v2": (32, 1, "fake-hash-32")}


async def test_another_model_of_the_same_dimension_is_refused(
    memory: MemoryServer, runtime: FakeRuntime
) -> None:
    await memory.stub.Remember(memory_pb2.RememberRequest(text="made with model one"))
    assert isinstance(runtime.servicer, HashingEmbeddingService)
    runtime.servicer.model = "other-model-64"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await memory.stub.Remember(memory_pb2.RememberRequest(text="made with model two"))
    details = expect_refusal(error.value, "EMBEDDING_MODEL_MISMATCH")
    assert "holds vectors from model 'fake-hash-64'" in details and "'other-model-64'" in details
    assert await count(memory) == {"memories": (64, 1, "fake-hash-64")}


async def test_the_dimension_check_survives_a_restart(
    start_memory: StartMemory, runtime: FakeRuntime, runtime_32: FakeRuntime
) -> None:
    first = await start_memory(runtime.address, "edge")
    await first.stub.Remember(memory_pb2.RememberRequest(text="made with the 64-d model"))
    await first.stop()

    second = await start_memory(runtime_32.address, "edge")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await second.stub.Remember(memory_pb2.RememberRequest(text="made with the 32-d model"))
    expect_refusal(error.value, "EMBEDDING_DIMENSION_MISMATCH")
    assert await count(second) == {"memories": (64, 1, "fake-hash-64")}
