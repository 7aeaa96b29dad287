"""MemoryService over real gRPC, on both backends: remember, search, get, forget, collections."""

from __future__ import annotations

import uuid

import grpc
import pytest
from ducklm.memory.v1 import memory_pb2
from google.protobuf import struct_pb2

from .fakes import FakeRuntime, MemoryServer, hash_embedding

FACTS = [
    ("the cat sleeps on the warm windowsill", "task-a", "fact", ["pets", "home"]),
    ("the dog barks at the mail carrier", "task-a", "fact", ["pets"]),
    ("paris is the capital of france", "task-b", "fact", ["geography"]),
    ("remember to buy milk and eggs", "task-b", "note", ["shopping", "home"]),
]


async def remember_facts(memory: MemoryServer, collection: str = "") -> dict[str, str]:
    ids = {}
    for text, task_id, kind, tags in FACTS:
        reply = await memory.stub.Remember(
            memory_pb2.RememberRequest(
                text=text, task_id=task_id, kind=kind, tags=tags, collection=collection
            )
        )
        ids[text] = reply.id
    return ids


async def search_texts(memory: MemoryServer, **fields: object) -> list[str]:
    reply = await memory.stub.Search(memory_pb2.SearchRequest(**fields))  # type: ignore[arg-type]
    return [hit.memory.text for hit in reply.results]


async def test_remember_returns_a_uuid_and_get_gives_everything_back(memory: MemoryServer) -> None:
    metadata = struct_pb2.Struct()
    metadata.update({"source": "chat", "turn": 3})
    stored = await memory.stub.Remember(
        memory_pb2.RememberRequest(
            text="the user prefers short answers", task_id="t-1", kind="fact",
            tags=["prefs", "style"], metadata=metadata,
        )
    )
    assert uuid.UUID(stored.id).version == 4
    got = await memory.stub.GetMemory(memory_pb2.GetMemoryRequest(memory_id=stored.id))
    assert got.text == "the user prefers short answers"
    assert (got.task_id, got.kind, list(got.tags)) == ("t-1", "fact", ["prefs", "style"])
    assert dict(got.metadata) == {"source": "chat", "turn": 3.0}
    assert got.create_time.seconds > 0
    assert got == stored


async def test_search_by_text_ranks_the_closest_memory_first(memory: MemoryServer) -> None:
    await remember_facts(memory)
    reply = await memory.stub.Search(memory_pb2.SearchRequest(text="where does the cat sleep", top_k=2))
    assert reply.results[0].memory.text == "the cat sleeps on the warm windowsill"
    assert len(reply.results) == 2
    assert reply.results[0].score > reply.results[1].score
    assert reply.embedding_ms > 0
    assert reply.search_ms > 0


async def test_top_k_defaults_to_five_and_caps_at_one_hundred(memory: MemoryServer) -> None:
    for number in range(7):
        await memory.stub.Remember(memory_pb2.RememberRequest(text=f"note number {number}"))
    assert len(await search_texts(memory, text="note")) == 5
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await memory.stub.Search(memory_pb2.SearchRequest(text="note", top_k=101))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "top_k" in (error.value.details() or "")


async def test_score_threshold_drops_weak_matches(memory: MemoryServer) -> None:
    await remember_facts(memory)
    everything = await memory.stub.Search(memory_pb2.SearchRequest(text="the cat sleeps", top_k=10))
    assert len(everything.results) == 4
    strong = await search_texts(memory, text="the cat sleeps", top_k=10, score_threshold=0.5)
    assert strong == ["the cat sleeps on the warm windowsill"]


async def test_search_filters_on_task_kind_and_all_tags(memory: MemoryServer) -> None:
    await remember_facts(memory)
    by_task = await search_texts(
        memory, text="the", top_k=10, filter=memory_pb2.MemoryFilter(task_id="task-b")
    )
    assert sorted(by_task) == ["paris is the capital of france", "remember to buy milk and eggs"]
    by_kind = await search_texts(memory, text="the", top_k=10, filter=memory_pb2.MemoryFilter(kind="note"))
    assert by_kind == ["remember to buy milk and eggs"]
    both_tags = await search_texts(
        memory, text="the", top_k=10, filter=memory_pb2.MemoryFilter(tags=["pets", "home"])
    )
    assert both_tags == ["the cat sleeps on the warm windowsill"]
    combined = await search_texts(
        memory, text="the", top_k=10, filter=memory_pb2.MemoryFilter(task_id="task-a", tags=["geography"])
    )
    assert combined == []


async def test_search_by_vector_needs_the_collections_dimension(memory: MemoryServer) -> None:
    await remember_facts(memory)
    vector = memory_pb2.Vector(values=hash_embedding("paris france", 64))
    reply = await memory.stub.Search(memory_pb2.SearchRequest(vector=vector, top_k=1))
    assert reply.results[0].memory.text == "paris is the capital of france"
    assert reply.embedding_ms == 0
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await memory.stub.Search(memory_pb2.SearchRequest(vector=memory_pb2.Vector(values=[1.0, 0.0])))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "2 values" in (error.value.details() or "") and "64-dimensional" in (error.value.details() or "")


async def test_forget_by_id_then_get_is_not_found(memory: MemoryServer) -> None:
    ids = await remember_facts(memory)
    target = ids["the dog barks at the mail carrier"]
    reply = await memory.stub.Forget(memory_pb2.ForgetRequest(memory_id=target))
    assert reply.deleted == 1
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await memory.stub.GetMemory(memory_pb2.GetMemoryRequest(memory_id=target))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "the dog barks at the mail carrier" not in await search_texts(memory, text="dog barks", top_k=10)
    again = await memory.stub.Forget(memory_pb2.ForgetRequest(memory_id=target))
    assert again.deleted == 0


async def test_forget_by_filter_deletes_only_the_matches(memory: MemoryServer) -> None:
    await remember_facts(memory)
    reply = await memory.stub.Forget(memory_pb2.ForgetRequest(filter=memory_pb2.MemoryFilter(tags=["pets"])))
    assert reply.deleted == 2
    left = await search_texts(memory, text="the", top_k=10)
    assert sorted(left) == ["paris is the capital of france", "remember to buy milk and eggs"]
    none = await memory.stub.Forget(memory_pb2.ForgetRequest(filter=memory_pb2.MemoryFilter(kind="missing")))
    assert none.deleted == 0


async def test_collections_are_separate_and_listed_with_their_stats(
    memory: MemoryServer, backend: str
) -> None:
    await remember_facts(memory)
    await memory.stub.Remember(memory_pb2.RememberRequest(text="the cat is grey", collection="pets-only"))
    assert await search_texts(memory, text="cat", collection="pets-only") == ["the cat is grey"]
    listed = await memory.stub.ListCollections(memory_pb2.ListCollectionsRequest())
    stats = {c.name: (c.dimension, c.count, c.backend, c.embedding_model) for c in listed.collections}
    assert stats == {
        "memories": (64, 4, backend, "fake-hash-64"),
        "pets-only": (64, 1, backend, "fake-hash-64"),
    }


async def test_a_collection_nobody_wrote_to_is_empty(memory: MemoryServer) -> None:
    assert await search_texts(memory, text="anything", collection="fresh") == []
    reply = await memory.stub.Forget(
        memory_pb2.ForgetRequest(memory_id=str(uuid.uuid4()), collection="fresh")
    )
    assert reply.deleted == 0
    listed = await memory.stub.ListCollections(memory_pb2.ListCollectionsRequest())
    assert list(listed.collections) == []


@pytest.mark.parametrize(
    ("call", "request_message", "expected"),
    [
        ("Remember", memory_pb2.RememberRequest(text="  "), "text is required"),
        ("Remember", memory_pb2.RememberRequest(text="x", tags=[""]), "tags must not be empty"),
        ("Remember", memory_pb2.RememberRequest(text="x", collection="../etc"), "not a valid name"),
        ("Search", memory_pb2.SearchRequest(), "`text` or `vector`"),
        ("Search", memory_pb2.SearchRequest(text="x", top_k=-1), "top_k"),
        ("GetMemory", memory_pb2.GetMemoryRequest(memory_id="not-a-uuid"), "not a memory id"),
        ("Forget", memory_pb2.ForgetRequest(), "`memory_id`, `filter` or `scope`"),
        ("Forget", memory_pb2.ForgetRequest(filter=memory_pb2.MemoryFilter()), "the filter is empty"),
    ],
)
async def test_bad_requests_are_invalid_argument_with_a_reason(
    memory: MemoryServer, call: str, request_message: object, expected: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(memory.stub, call)(request_message)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in (error.value.details() or "")


async def test_get_of_an_unknown_id_is_not_found(memory: MemoryServer, runtime: FakeRuntime) -> None:
    await remember_facts(memory)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await memory.stub.GetMemory(memory_pb2.GetMemoryRequest(memory_id=str(uuid.uuid4())))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
