"""How well memory finds what it was told, with the configured embedding model, end to end.

    .venv/bin/python scripts/bench/memory_eval.py [--runtime-address HOST:PORT]

Without an address it starts llama-server (the `embedding` server of config/models.yaml) and a
runtime, as `make run` does. It stores the facts of scripts/bench/data/memory_facts.json in a
fresh memory service (Qdrant Edge, in this process) through Remember, asks each question
through Search, and prints next to their targets:
  recall@1, recall@5   the fact written for the question is the first / among the first five
  embed p50            one short text through the runtime's Embed RPC (what memory pays)
  recall p50           the Recall RPC a turn makes before its first model call
and the calibration of the recall threshold: the scores of the right answers against the best
scores of questions no fact answers, and what the configured threshold keeps of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc

from deploy.stack import LocalStack, StackPorts
from services.memory.config import Settings
from services.memory.embeddings import RuntimeEmbedder
from services.memory.server import create_server

DATA = Path(__file__).parent / "data" / "memory_facts.json"
TARGETS = {"recall@1": 0.80, "recall@5": 0.95, "embed_p50_ms": 15.0, "recall_p50_ms": 20.0}


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


async def timed(calls: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for index in range(calls):
        started = time.perf_counter()
        await call(index)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def evaluate(runtime_address: str, data: dict[str, object], rounds: int) -> bool:
    facts: list[str] = data["facts"]  # type: ignore[assignment]
    questions: list[dict[str, object]] = data["questions"]  # type: ignore[assignment]
    unanswerable: list[str] = data["unanswerable"]  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="memory-eval-") as scratch:
        settings = Settings(address="127.0.0.1:0", edge_path=Path(scratch) / "memory", runtime_address=runtime_address,
                            edge_flush_writes=False)
        server = await create_server(settings)
        embedder = RuntimeEmbedder(runtime_address)
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = memory_pb2_grpc.MemoryServiceStub(channel)
                ids = []
                for fact in facts:
                    stored = await stub.Remember(memory_pb2.RememberRequest(
                        text=fact, scope=memory_pb2.MEMORY_SCOPE_LONG_TERM, kind="fact"))
                    ids.append(stored.id)
                collection = stored.collection
                hits1 = hits5 = 0
                right_scores: list[float] = []
                misses: list[str] = []
                for item in questions:
                    reply = await stub.Search(memory_pb2.SearchRequest(text=str(item["question"]), top_k=5))
                    found = [hit.memory.id for hit in reply.results]
                    expected = ids[int(item["answer"])]  # type: ignore[call-overload]
                    hits1 += found[:1] == [expected]
                    hits5 += expected in found
                    right_scores += [hit.score for hit in reply.results if hit.memory.id == expected]
                    if found[:1] != [expected]:
                        misses.append(f"    {item['question']!r} -> {reply.results[0].memory.text!r}")
                best_unanswerable = []
                for text in unanswerable:
                    reply = await stub.Search(memory_pb2.SearchRequest(text=text, top_k=1))
                    best_unanswerable.append(reply.results[0].score)
                recall_ms = await timed(rounds, lambda i: stub.Recall(memory_pb2.RecallRequest(
                    text=str(questions[i % len(questions)]["question"]), task_id="eval")))
                embed_ms = await timed(rounds, lambda i: embedder.embed([f"what did the user say about topic {i}?"]))
                listed = await stub.ListCollections(memory_pb2.ListCollectionsRequest())
        finally:
            await embedder.close()
            await server.stop(0)
    model = next(c for c in listed.collections if c.name == collection)
    recall1, recall5 = hits1 / len(questions), hits5 / len(questions)
    embed_p50, recall_p50 = float(np.percentile(embed_ms, 50)), float(np.percentile(recall_ms, 50))
    print(f"memory eval: {len(facts)} facts, {len(questions)} questions, model {model.embedding_model!r} "
          f"({model.dimension} dims), collection {collection!r}")
    print(f"  recall@1     {recall1:.3f}   target >= {TARGETS['recall@1']:.2f}: {verdict(recall1 >= TARGETS['recall@1'])}")
    print(f"  recall@5     {recall5:.3f}   target >= {TARGETS['recall@5']:.2f}: {verdict(recall5 >= TARGETS['recall@5'])}")
    print(f"  embed p50    {embed_p50:6.2f} ms (p99 {np.percentile(embed_ms, 99):.2f})   "
          f"target <= {TARGETS['embed_p50_ms']:.0f} ms: {verdict(embed_p50 <= TARGETS['embed_p50_ms'])}")
    print(f"  recall p50   {recall_p50:6.2f} ms (embedding + search, before the first model call)   "
          f"target <= {TARGETS['recall_p50_ms']:.0f} ms: {verdict(recall_p50 <= TARGETS['recall_p50_ms'])}")
    if misses:
        print("  questions whose first hit was another fact:")
        print("\n".join(misses))
    threshold = settings.recall_score_threshold
    right, wrong = np.array(right_scores), np.array(best_unanswerable)
    print(f"\nrecall threshold calibration (configured: {threshold})")
    print(f"  right answers' scores    min {right.min():.3f}  p10 {np.percentile(right, 10):.3f}  "
          f"median {np.median(right):.3f}  max {right.max():.3f}")
    print(f"  unanswerable best score  min {wrong.min():.3f}  median {np.median(wrong):.3f}  "
          f"p90 {np.percentile(wrong, 90):.3f}  max {wrong.max():.3f}")
    for candidate in sorted({0.25, 0.30, 0.35, 0.40, 0.45, 0.50, threshold}):
        mark = "  <- configured" if candidate == threshold else ""
        print(f"  at {candidate:.2f}: keeps {np.mean(right >= candidate):4.0%} of right answers, lets "
              f"{np.mean(wrong >= candidate):4.0%} of unanswerable questions recall something{mark}")
    return recall1 >= TARGETS["recall@1"] and recall5 >= TARGETS["recall@5"]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime-address", default="", help="use this runtime (with an embedding role)")
    parser.add_argument("--rounds", type=int, default=100, help="timed calls per latency figure")
    args = parser.parse_args()
    data = json.loads(DATA.read_text())
    if args.runtime_address:
        return 0 if await evaluate(args.runtime_address, data, args.rounds) else 1
    with tempfile.TemporaryDirectory(prefix="memory-eval-stack-") as scratch:
        stack = LocalStack(data_dir=Path(scratch), ports=StackPorts.free(), services=("runtime",),
                           with_gateway=False, extra_env={"DUCKLM_RUNTIME_STANDALONE": "true"})
        await stack.start(timeout=240)
        try:
            return 0 if await evaluate(stack.address("runtime"), data, args.rounds) else 1
        finally:
            await stack.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
