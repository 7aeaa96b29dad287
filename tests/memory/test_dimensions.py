"""A collection's dimension and embedding model are fixed when it is created. Switching the
embedding model moves the default collection to a new one (and says so); vectors of two models
are never mixed, and a collection named explicitly refuses another model's vectors, clearly,
before anything is written. Both hold across restarts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc
import pytest
from ducklm.memory.v1 import memory_pb2

from services.memory.placement import collection_for_model

from .fakes import FakeRuntime, HashingEmbeddingService, MemoryServer, StartMemory


async def count(memory: MemoryServer) -> dict[str, tuple[int, int, str]]:
    listed = await memory.stub.ListCollections(memory_pb2.ListCollectionsRequest())
    return {c.name: (c.dimension, c.count, c.embedding_model) for c in listed.collections}


def expect_refusal(error: grpc.aio.AioRpcError, reason: str) -> str:
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(error.initial_metadata() or ()).get("ducklm-error-reason") == reason
    return error.details() or ""


async def test_dimension_follows_the_first_embedding(memory: MemoryServer) -> None:
    stored = await memory.stub.Remember(memory_pb2.RememberRequest(text="first memory"))
    assert stored.collection == "memories"
    assert await count(memory) == {"memories": (64, 1, "fake-hash-64")}


async def test_switching_the_model_starts_a_new_default_collection_and_says_so(
    memory: MemoryServer, runtime: FakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    await memory.stub.Remember(memory_pb2.RememberRequest(text="made with the 64-d model"))
    assert isinstance(runtime.servicer, HashingEmbeddingService)
    runtime.servicer.dimension, runtime.servicer.model = 32, "fake-hash-32"

    with caplog.at_level(logging.WARNING, logger="services.memory.placement"):
        stored = await memory.stub.Remember(memory_pb2.RememberRequest(text="made with the 32-d model"))
    assert stored.collection == "memories-fake-hash-32"
    assert "memories-fake-hash-32" in caplog.text and "fake-hash-64" in caplog.text
    assert await count(memory) == {"memories": (64, 1, "fake-hash-64"), "memories-fake-hash-32": (32, 1, "fake-hash-32")}
    # Searching by default reads the new model's collection only: the old vectors are not compared.
    found = await memory.stub.Search(memory_pb2.SearchRequest(text="made with the"))
    assert [hit.memory.text for hit in found.results] == ["made with the 32-d model"]
    listed = await memory.stub.ListMemories(memory_pb2.ListMemoriesRequest())
    assert [m.text for m in listed.memories] == ["made with the 32-d model"]
    # The old memories stay reachable by naming their collection.
    old = await memory.stub.ListMemories(memory_pb2.ListMemoriesRequest(collection="memories"))
    assert [m.text for m in old.memories] == ["made with the 64-d model"]


async def test_a_named_collection_refuses_another_dimension(memory: MemoryServer, runtime: FakeRuntime) -> None:
    await memory.stub.Remember(memory_pb2.RememberRequest(text="made with the 64-d model", collection="notes"))
    assert isinstance(runtime.servicer, HashingEmbeddingService)
    runtime.servicer.dimension, runtime.servicer.model = 32, "fake-hash-32"

    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: memory.stub.Remember(memory_pb2.RememberRequest(text="made with the 32-d model", collection="notes")),
        lambda: memory.stub.Search(memory_pb2.SearchRequest(text="made with", collection="notes")),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call()
        details = expect_refusal(error.value, "EMBEDDING_DIMENSION_MISMATCH")
        assert details.startswith(
            "embedding dimension mismatch: collection 'notes' holds 64-dimensional vectors from "
            "model 'fake-hash-64', but the runtime's embedding model 'fake-hash-32' gives 32."
        )
        assert "nothing changed" in details
    assert await count(memory) == {"notes": (64, 1, "fake-hash-64")}


async def test_a_named_collection_refuses_another_model_of_the_same_dimension(
    memory: MemoryServer, runtime: FakeRuntime
) -> None:
    await memory.stub.Remember(memory_pb2.RememberRequest(text="made with model one", collection="notes"))
    assert isinstance(runtime.servicer, HashingEmbeddingService)
    runtime.servicer.model = "other-model-64"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await memory.stub.Remember(memory_pb2.RememberRequest(text="made with model two", collection="notes"))
    details = expect_refusal(error.value, "EMBEDDING_MODEL_MISMATCH")
    assert "holds vectors from model 'fake-hash-64'" in details and "'other-model-64'" in details
    assert await count(memory) == {"notes": (64, 1, "fake-hash-64")}


async def test_updating_a_text_with_another_model_is_refused(memory: MemoryServer, runtime: FakeRuntime) -> None:
    stored = await memory.stub.Remember(memory_pb2.RememberRequest(text="made with model one"))
    assert isinstance(runtime.servicer, HashingEmbeddingService)
    runtime.servicer.model = "other-model-64"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await memory.stub.UpdateMemory(memory_pb2.UpdateMemoryRequest(
            memory_id=stored.id, update_mask=["text"], text="changed", collection="memories"))
    expect_refusal(error.value, "EMBEDDING_MODEL_MISMATCH")
    kept = await memory.stub.GetMemory(memory_pb2.GetMemoryRequest(memory_id=stored.id, collection="memories"))
    assert kept.text == "made with model one"


async def test_the_model_check_survives_a_restart(
    start_memory: StartMemory, runtime: FakeRuntime, runtime_32: FakeRuntime
) -> None:
    first = await start_memory(runtime.address, "edge")
    await first.stub.Remember(memory_pb2.RememberRequest(text="made with the 64-d model", collection="notes"))
    await first.stub.Remember(memory_pb2.RememberRequest(text="made with the 64-d model"))
    await first.stop()

    second = await start_memory(runtime_32.address, "edge")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await second.stub.Remember(memory_pb2.RememberRequest(text="made with the 32-d model", collection="notes"))
    expect_refusal(error.value, "EMBEDDING_DIMENSION_MISMATCH")
    stored = await second.stub.Remember(memory_pb2.RememberRequest(text="made with the 32-d model"))
    assert stored.collection == collection_for_model("memories", "fake-hash-32")
    assert (await count(second))["memories"] == (64, 1, "fake-hash-64")


def test_a_model_name_becomes_a_valid_collection_name() -> None:
    assert collection_for_model("memories", "all-MiniLM-L6-v2") == "memories-all-minilm-l6-v2"
    assert collection_for_model("memories", "org/Model name:Q4") == "memories-org-model-name-q4"
    assert len(collection_for_model("m", "x" * 200)) == 64
