"""Skills benchmark: a hundred and twenty skills loaded, chats through the real runtime and the real
llama-server with the real tiny model (its tokenizer counts the catalogue). Prints each figure
next to its target:
  - chats failed for context reasons with >= 100 skills (target 0), plain chats and chats that
    load a 40 KB skill;
  - the skills catalogue's share of the context window (target <= 25%), measured as the first
    model call's prompt tokens with the skills minus without any;
  - the first model call's prompt tokens with the skills, against a run with no skills plus the
    catalogue budget (target within 10%).

Run with `.venv/bin/python scripts/bench/skills_bench.py` (after `make llama-server model`).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from deploy.stack import LocalStack, StackPorts
from services.common.config import repo_root
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.models_config import load_models_config
from tests.skills.realworld import write_corpus

REQUESTS = (
    "Extract the tables from this PDF file",
    "Write unit tests with pytest for my parser module",
    "Review this pull request diff for security issues",
    "Name one colour.",
    "Plan a travel itinerary for three days in Lisbon",
    "Write a Dockerfile for my app",
    "What is in my workspace?",
    "Translate this document to French keeping the Markdown",
)
CONTEXT_FAILURES = ("context_full", "token_budget")


async def run_chats(skills_dir: Path, requests: tuple[str, ...], skill: str = "") -> list[tuple[int, int, str]]:
    """(first call's prompt tokens, status, error) for each request on a fresh stack."""
    with tempfile.TemporaryDirectory() as data:
        stack = LocalStack(
            data_dir=Path(data),
            ports=StackPorts.free(),
            services=("tools", "skills", "runtime"),
            with_gateway=False,
            without_embeddings=True,
            extra_env={
                "DUCKLM_SKILLS_SKILLS_DIR": str(skills_dir),
                "DUCKLM_RUNTIME_RECALL_TOP_K": "0",
                "DUCKLM_RUNTIME_MAX_STEPS": "2",
            },
        )
        await stack.start(timeout=240)
        results: list[tuple[int, int, str]] = []
        try:
            async with grpc.aio.insecure_channel(stack.address("runtime")) as channel:
                stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
                for request in requests:
                    reply = await stub.Chat(runtime_pb2.ChatRequest(message=request, skill=skill), timeout=600)
                    events = await stub.ListTaskEvents(
                        runtime_pb2.ListTaskEventsRequest(task_id=reply.task.id, page_size=1000)
                    )
                    first = next(
                        (e for e in events.events if e.type == common_pb2.EVENT_TYPE_MODEL_CALL), None
                    )
                    prompt = int(first.data["usage"]["prompt_tokens"]) if first is not None else 0
                    code = next(
                        (str(e.data["code"]) for e in events.events
                         if e.type == common_pb2.EVENT_TYPE_ERROR and "code" in e.data),
                        "",
                    )
                    results.append((prompt, reply.task.status, code if reply.task.status == common_pb2.TASK_STATUS_FAILED else ""))
        finally:
            await stack.stop()
        return results


def context_failed(results: list[tuple[int, int, str]]) -> int:
    return sum(1 for prompt, _, code in results if code in CONTEXT_FAILURES or prompt == 0)


async def main() -> int:
    window = load_models_config(repo_root() / "config" / "models.yaml").role("chat")
    assert window is not None
    budget = int(window.context_window * RuntimeSettings().skill_catalogue_share)
    with tempfile.TemporaryDirectory() as folder:
        corpus, empty = Path(folder) / "skills", Path(folder) / "none"
        stats = write_corpus(corpus)
        empty.mkdir()
        with_skills = await run_chats(corpus, REQUESTS)
        without = await run_chats(empty, REQUESTS)
        long_skill = await run_chats(corpus, REQUESTS[:3], skill=stats.long_bodies[0])
    extra = [a[0] - b[0] for a, b in zip(with_skills, without, strict=True) if a[0] and b[0]]
    print(f"skills loaded: {stats.valid} valid of {stats.folders} folders (context window {window.context_window} tokens)")
    failed = context_failed(with_skills) + context_failed(long_skill)
    print(f"chats failed for context reasons (or with no model call): {failed} of "
          f"{len(with_skills) + len(long_skill)} (target 0)")
    share = max(extra) / window.context_window if extra else 0.0
    print(f"skills catalogue share of the context window: max {100 * share:.1f}%, "
          f"median {100 * statistics.median(extra) / window.context_window:.1f}% (target <= 25%)")
    ratios = [a[0] / (b[0] + budget) for a, b in zip(with_skills, without, strict=True) if b[0]]
    worst = max(ratios) if ratios else 0.0
    print(f"first call's prompt tokens vs no skills + catalogue budget ({budget}): worst {worst:.3f}x "
          f"(target <= 1.10x)")
    print(f"first call's prompt tokens with a 40 KB skill loaded: {[r[0] for r in long_skill]} "
          f"(window {window.context_window})")
    ok = failed == 0 and share <= 0.25 and worst <= 1.10
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
