"""Embeddings come only from the runtime: disabled, unreachable and misbehaving runtimes give
exact, actionable errors, and nothing is written half-way."""

from __future__ import annotations

import grpc
import pytest
from ducklm.memory.v1 import memory_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.errors import Unavailable
from services.common.server import ServiceBinding, build_server
from services.common.testing import free_port
from services.memory.embeddings import RuntimeEmbedder

from .fakes import (
    DISABLED_DETAILS,
    EMBEDDING_SERVICE,
    FakeRuntime,
    StartMemory,
    hash_embedding,
)


def disabled_message(runtime_address: str) -> str:
    return (
        "embeddings are disabled: the runtime has no `embedding` role, so the memory service "
        "cannot turn text into vectors and stored nothing. Enable them by adding an `embedding` "
        "role to config/models.yaml and restarting the runtime "
        f"(runtime at {runtime_address} said: {DISABLED_DETAILS})"
    )


def reason(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.initial_metadata() or ()).get("ducklm-error-reason")


@pytest.mark.parametrize(
    "request_message",
    [
        memory_pb2.RememberRequest(text="the user likes tea", task_id="t", kind="fact", tags=["x"]),
        memory_pb2.SearchRequest(text="what does the user like"),
    ],
    ids=["remember", "search-by-text"],
)
async def test_calls_needing_a_vector_fail_with_embeddings_disabled(
    start_memory: StartMemory, disabled_runtime: FakeRuntime, backend: str,
    request_message: memory_pb2.RememberRequest | memory_pb2.SearchRequest,
) -> None:
    memory = await start_memory(disabled_runtime.address, backend)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        if isinstance(request_message, memory_pb2.RememberRequest):
            await memory.stub.Remember(request_message)
        else:
            await memory.stub.Search(request_message)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error.value) == "EMBEDDINGS_DISABLED"
    assert error.value.details() == disabled_message(disabled_runtime.address)
    assert disabled_runtime.servicer.calls == 1
    listed = await memory.stub.ListCollections(memory_pb2.ListCollectionsRequest())
    assert list(listed.collections) == [], "a refused call must not even create the collection"


async def test_disabled_embeddings_leave_stored_memories_usable(
    start_memory: StartMemory, runtime: FakeRuntime, disabled_runtime: FakeRuntime, tmp_path: object,
) -> None:
    # Remember with embeddings on, restart the (Edge) service against a runtime without them.
    first = await start_memory(runtime.address, "edge")
    stored = await first.stub.Remember(memory_pb2.RememberRequest(text="paris is in france", kind="fact"))
    await first.stop()
    memory = await start_memory(disabled_runtime.address, "edge")

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await memory.stub.Remember(memory_pb2.RememberRequest(text="berlin is in germany"))
    assert reason(error.value) == "EMBEDDINGS_DISABLED"
    listed = await memory.stub.ListCollections(memory_pb2.ListCollectionsRequest())
    assert [c.count for c in listed.collections] == [1]

    # What needs no new vector still works: get, search by vector, forget.
    got = await memory.stub.GetMemory(memory_pb2.GetMemoryRequest(memory_id=stored.id))
    assert got.text == "paris is in france"
    vector = memory_pb2.Vector(values=hash_embedding("paris france", 64))
    found = await memory.stub.Search(memory_pb2.SearchRequest(vector=vector))
    assert [hit.memory.id for hit in found.results] == [stored.id]
    forgotten = await memory.stub.Forget(
        memory_pb2.ForgetRequest(filter=memory_pb2.MemoryFilter(kind="fact"))
    )
    assert forgotten.deleted == 1


async def test_an_unreachable_runtime_is_unavailable_and_says_where(
    start_memory: StartMemory, backend: str
) -> None:
    address = f"127.0.0.1:{free_port()}"
    memory = await start_memory(address, backend)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await memory.stub.Remember(memory_pb2.RememberRequest(text="anything"))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(error.value) == "RUNTIME_UNAVAILABLE"
    assert f"could not get embeddings from the runtime at {address}" in (error.value.details() or "")
    listed = await memory.stub.ListCollections(memory_pb2.ListCollectionsRequest())
    assert list(listed.collections) == []


class _WrongCountService(runtime_pb2_grpc.EmbeddingServiceServicer):
    async def Embed(
        self,
        request: runtime_pb2.EmbedRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.EmbedRequest, runtime_pb2.EmbedResponse],
    ) -> runtime_pb2.EmbedResponse:
        return runtime_pb2.EmbedResponse(embeddings=[], model="broken", dimension=8)


async def test_a_malformed_embed_answer_is_refused() -> None:
    binding = ServiceBinding(
        _WrongCountService(), runtime_pb2_grpc.add_EmbeddingServiceServicer_to_server, EMBEDDING_SERVICE
    )
    server = await build_server([binding], "127.0.0.1:0")
    embedder = RuntimeEmbedder(server.address, timeout_s=5)
    try:
        with pytest.raises(Unavailable) as error:
            await embedder.embed(["one text"])
        assert error.value.reason == "EMBEDDINGS_MALFORMED"
        assert "0 vectors of dimension 8 for 1 texts" in error.value.message
    finally:
        await embedder.close()
        await server.stop(0)


async def test_embedder_returns_the_runtimes_vectors_model_and_dimension(runtime: FakeRuntime) -> None:
    embedder = RuntimeEmbedder(runtime.address, timeout_s=5)
    try:
        embeddings = await embedder.embed(["a cat", "a dog"])
    finally:
        await embedder.close()
    assert embeddings.model == "fake-hash-64" and embeddings.dimension == 64
    assert embeddings.vectors == [pytest.approx(hash_embedding(t, 64)) for t in ("a cat", "a dog")]
