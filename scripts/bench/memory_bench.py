"""Recall latency of the memory service on Qdrant Edge at 10k and 100k stored memories.

    .venv/bin/python scripts/bench/memory_bench.py [--dim 384] [--runtime-address 127.0.0.1:50051]

Stores synthetic, clustered vectors (like real embeddings, which bunch by topic) straight into
the service's EdgeStore, lets it build its index, then times searches three ways:
  engine   EdgeStore.search, as the service calls it (worker thread included)
  filtered the same with a task_id filter
  scoped   the same in the scopes automatic recall reads (long-term, or one task's own)
  gRPC     MemoryService/Search with a query vector, over a real local channel
Recall@10 is checked against exact (numpy) nearest neighbours. Embedding time is measured apart,
only when a runtime address is given (it is the runtime's model, not the store). Target: p99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import numpy as np
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc

from services.common.errors import DuckLMError
from services.common.protos import utc_now
from services.common.server import ServiceBinding, build_server
from services.memory.edge_store import EdgeStore
from services.memory.embeddings import RuntimeEmbedder
from services.memory.memories import Memories
from services.memory.records import CollectionSpec, MemoryFilter, MemoryRecord, ScopeRef
from services.memory.server import SERVICE_NAME, MemoryServicer

COLLECTION = "bench"
BATCH = 1_000


class Corpus:
    """Vectors around a few hundred topic centres; queries come from the same topics."""

    def __init__(self, dimension: int, spread: float, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.spread = spread
        self.centres = self.rng.standard_normal((300, dimension)).astype(np.float32)

    def sample(self, count: int) -> np.ndarray:
        picks = self.centres[self.rng.integers(0, len(self.centres), count)]
        noise = self.spread * self.rng.standard_normal(picks.shape).astype(np.float32)
        return picks + noise


def percentiles(samples_ms: list[float]) -> str:
    values = np.array(samples_ms)
    return (f"p50 {np.percentile(values, 50):6.2f} ms   p99 {np.percentile(values, 99):6.2f} ms   "
            f"mean {values.mean():6.2f} ms")


async def timed(calls: int, make_call) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for index in range(calls):
        started = time.perf_counter()
        await make_call(index)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def load(store: EdgeStore, vectors: np.ndarray, start: int) -> dict[str, int]:
    """Stores `vectors` in batches; returns each new memory's id -> its row in the corpus."""
    rows: dict[str, int] = {}
    for offset in range(0, len(vectors), BATCH):
        chunk = vectors[offset:offset + BATCH]
        items = [
            (
                MemoryRecord(
                    id=str(uuid.uuid4()), text=f"memory {start + offset + i}", create_time=utc_now(),
                    task_id=f"task-{(start + offset + i) % 100}", kind="fact",
                    # One in ten is long-term, as if promoted; the rest belong to their task.
                    scope="long_term" if (start + offset + i) % 10 == 0 else "task",
                ),
                row.tolist(),
            )
            for i, row in enumerate(chunk)
        ]
        await store.upsert(COLLECTION, items)
        rows.update((record.id, start + offset + i) for i, (record, _) in enumerate(items))
    return rows


def exact_top10(stored: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    unit = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    scores = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    return [set(np.argpartition(-row, 10)[:10].tolist()) for row in scores]


async def measure(store: EdgeStore, stub: memory_pb2_grpc.MemoryServiceAsyncStub, stored: np.ndarray,
                  ids: dict[str, int], corpus: Corpus, queries: int) -> None:
    probes = corpus.sample(queries)
    as_lists = probes.tolist()
    engine = await timed(queries, lambda i: store.search(COLLECTION, as_lists[i], limit=5))
    filtered = await timed(queries, lambda i: store.search(
        COLLECTION, as_lists[i], limit=5, memory_filter=MemoryFilter(task_id=f"task-{i % 100}")))
    scoped = await timed(queries, lambda i: store.search(
        COLLECTION, as_lists[i], limit=3, scopes=[ScopeRef("long_term"), ScopeRef("task", task_id=f"task-{i % 100}")]))
    over_grpc = await timed(queries, lambda i: stub.Search(memory_pb2.SearchRequest(
        vector=memory_pb2.Vector(values=as_lists[i]), top_k=5, collection=COLLECTION)))
    truth = exact_top10(stored, probes[:200])
    hits = 0
    for probe, expected in zip(as_lists[:200], truth, strict=True):
        found = await store.search(COLLECTION, probe, limit=10)
        hits += len({ids[hit.record.id] for hit in found} & expected)
    print(f"  engine    {percentiles(engine)}")
    print(f"  filtered  {percentiles(filtered)}")
    print(f"  scoped    {percentiles(scoped)}")
    print(f"  gRPC      {percentiles(over_grpc)}")
    print(f"  recall@10 {hits / (10 * len(truth)):.3f} against exact search")
    worst = max(np.percentile(engine, 99), np.percentile(filtered, 99), np.percentile(scoped, 99))
    print(f"  target p99 <= 5 ms (engine, filtered, scoped): {'met' if worst <= 5 else 'NOT met'}")


async def durable_write_latency(folder: Path, dimension: int, corpus: Corpus) -> list[float]:
    store = await EdgeStore.open(folder, flush_writes=True)
    try:
        await store.create_collection(CollectionSpec(COLLECTION, dimension, "synthetic"))
        vectors = corpus.sample(20).tolist()
        return await timed(20, lambda i: store.upsert(COLLECTION, [(
            MemoryRecord(id=str(uuid.uuid4()), text="one", create_time=utc_now()), vectors[i])]))
    finally:
        await store.close()


async def embedding_latency(address: str, queries: int) -> None:
    embedder = RuntimeEmbedder(address, timeout_s=30)
    try:
        first = await embedder.embed(["warm-up"])
        samples = await timed(queries, lambda i: embedder.embed([f"what did the user say about topic {i}?"]))
        print(f"embedding (runtime {address}, model {first.model!r}, {first.dimension} dims, one short text)")
        print(f"  Embed     {percentiles(samples)}")
    except DuckLMError as exc:
        print(f"embedding: not measured, the runtime at {address} refused: {exc.message}")
    finally:
        await embedder.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dim", type=int, default=384, help="vector dimension (default 384)")
    parser.add_argument("--sizes", default="10000,100000", help="stored memories to measure at")
    parser.add_argument("--queries", type=int, default=1000, help="searches per measurement")
    parser.add_argument("--spread", type=float, default=0.8,
                        help="noise around each topic centre; higher is harder for the index (default 0.8)")
    parser.add_argument("--runtime-address", default="", help="measure Embed on this runtime too")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    corpus = Corpus(args.dim, args.spread)
    began = time.perf_counter()
    print(f"memory bench: Qdrant Edge, {args.dim}-d cosine, spread {args.spread}, "
          f"{args.queries} searches per row, top_k 5")
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as scratch:
        store = await EdgeStore.open(Path(scratch) / "memory", flush_writes=False)
        # Searches by vector never call the runtime; the embedder is only there to complete the service.
        embedder = RuntimeEmbedder(args.runtime_address or "127.0.0.1:1")
        memories = Memories(store, embedder, default_collection=COLLECTION)
        binding = ServiceBinding(
            MemoryServicer(memories), memory_pb2_grpc.add_MemoryServiceServicer_to_server, SERVICE_NAME
        )
        server = await build_server([binding], "127.0.0.1:0")
        channel = grpc.aio.insecure_channel(server.address)
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        try:
            await store.create_collection(CollectionSpec(COLLECTION, args.dim, "synthetic"))
            stored = np.empty((0, args.dim), dtype=np.float32)
            ids: dict[str, int] = {}
            for size in sizes:
                fresh = corpus.sample(size - len(stored))
                started = time.perf_counter()
                ids.update(await load(store, fresh, len(stored)))
                loaded = time.perf_counter() - started
                await store.settle()
                settled = time.perf_counter() - started - loaded
                stored = np.concatenate([stored, fresh])
                indexed = await store.indexed_count(COLLECTION)
                print(f"\n{size:,} memories (stored in {loaded:.1f} s with indexing running alongside, "
                      f"{settled:.1f} s more until it settled; {indexed:,} in HNSW, the rest scanned)")
                await measure(store, stub, stored, ids, corpus, args.queries)
        finally:
            await channel.close()
            await server.stop(0)
            await embedder.close()
            await store.close()
        writes = await durable_write_latency(Path(scratch) / "writes", args.dim, corpus)
    print(f"\none durable write (upsert + fsync, as Remember does without the embedding)\n"
          f"  write     {percentiles(writes)}")
    if args.runtime_address:
        await embedding_latency(args.runtime_address, min(args.queries, 200))
    else:
        print("embedding: not measured (pass --runtime-address of a runtime with an `embedding` role)")
    print(f"\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
