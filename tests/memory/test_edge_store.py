"""Qdrant Edge specifics: memories persist across restarts, the data folder has one owner,
interrupted collection builds are cleaned up, and background indexing settles."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import grpc
import pytest
from ducklm.memory.v1 import memory_pb2

from services.common.errors import FailedPrecondition
from services.common.protos import utc_now
from services.memory.edge_store import EdgeStore
from services.memory.records import CollectionSpec, MemoryFilter, MemoryRecord

from .fakes import FakeRuntime, StartMemory


@pytest.mark.parametrize("flush_writes", [True, False])
async def test_memories_survive_a_restart(
    start_memory: StartMemory, runtime: FakeRuntime, flush_writes: bool
) -> None:
    first = await start_memory(runtime.address, "edge", edge_flush_writes=flush_writes)
    kept = await first.stub.Remember(
        memory_pb2.RememberRequest(text="the deploy key lives in the vault", task_id="t-9", tags=["ops"])
    )
    dropped = await first.stub.Remember(memory_pb2.RememberRequest(text="a passing thought"))
    await first.stub.Forget(memory_pb2.ForgetRequest(memory_id=dropped.id))
    await first.stop()

    second = await start_memory(runtime.address, "edge", edge_flush_writes=flush_writes)
    got = await second.stub.GetMemory(memory_pb2.GetMemoryRequest(memory_id=kept.id))
    assert got == kept
    found = await second.stub.Search(memory_pb2.SearchRequest(text="where is the deploy key", top_k=5))
    assert [hit.memory.id for hit in found.results] == [kept.id]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await second.stub.GetMemory(memory_pb2.GetMemoryRequest(memory_id=dropped.id))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_second_service_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    store = await EdgeStore.open(tmp_path)
    try:
        with pytest.raises(FailedPrecondition) as error:
            await EdgeStore.open(tmp_path)
        assert error.value.reason == "STORAGE_IN_USE"
        assert "in use by another memory service" in error.value.message
    finally:
        await store.close()
    reopened = await EdgeStore.open(tmp_path)
    await reopened.close()


async def test_an_interrupted_collection_build_is_removed(tmp_path: Path) -> None:
    leftover = tmp_path / ".creating-memories-0123"
    (leftover / "shard").mkdir(parents=True)
    store = await EdgeStore.open(tmp_path)
    try:
        assert not leftover.exists()
        assert await store.collections() == []
    finally:
        await store.close()


async def test_indexing_settles_and_search_stays_exact_enough(tmp_path: Path) -> None:
    # Past the engine's indexing threshold (~10 MB of vectors) optimize() builds HNSW in the
    # background; searches must find the same nearest point before and after.
    dimension, total = 256, 12_000
    rng = random.Random(7)
    store = await EdgeStore.open(tmp_path, flush_writes=False)
    try:
        await store.create_collection(CollectionSpec("bulk", dimension, "synthetic"))
        vectors = [[rng.gauss(0, 1) for _ in range(dimension)] for _ in range(total)]
        records = [
            MemoryRecord(
                id=str(uuid.uuid4()), text=f"m{i}", create_time=utc_now(), kind="odd" if i % 2 else "even"
            )
            for i in range(total)
        ]
        batches = zip(records, vectors, strict=True)
        for _ in range(total // 2_000):
            await store.upsert("bulk", [next(batches) for _ in range(2_000)])
        await store.settle()
        assert await store.indexed_count("bulk") >= 10_000
        for probe in (0, 4_321, 11_999):
            hits = await store.search("bulk", vectors[probe], limit=3)
            assert hits[0].record.id == records[probe].id
            assert hits[0].score == pytest.approx(1.0, abs=1e-3)
        odd = await store.search("bulk", vectors[0], limit=3, memory_filter=MemoryFilter(kind="odd"))
        assert odd and all(hit.record.kind == "odd" for hit in odd)
        assert [info.count for info in await store.collections()] == [total]
    finally:
        await store.close()
