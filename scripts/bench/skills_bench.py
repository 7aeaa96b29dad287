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
import signal
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
    "Name one colour.",
    "Plan a travel itinerary for three days in Lisbon",
)
CONTEXT_FAILURES = ("context_full", "token_budget")
Result = tuple[int, str]  # (first model call's prompt tokens, 0 if none; failure code or "")


async def chat(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, request: str, skill: str = "") -> Result:
    reply = await stub.Chat(runtime_pb2.ChatRequest(message=request, skill=skill), timeout=600)
    events = await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=reply.task.id, page_size=1000))
    first = next((e for e in events.events if e.type == common_pb2.EVENT_TYPE_MODEL_CALL), None)
    usage = first.data.fields["usage"].struct_value if first is not None else None
    prompt = int(usage.fields["prompt_tokens"].number_value) if usage is not None else 0
    codes = [str(e.data["code"]) for e in events.events if e.type == common_pb2.EVENT_TYPE_ERROR and "code" in e.data]
    failed = reply.task.status == common_pb2.TASK_STATUS_FAILED
    print(f"  {request[:40]!r} skill={skill or '-'}: first prompt {prompt} tokens"
          + (f", failed: {codes[-1] if codes else reply.task.error}" if failed else ""), flush=True)
    return prompt, (codes[-1] if codes else "failed") if failed else ""


async def run(skills_dir: Path, long_skill: str) -> tuple[list[Result], list[Result], list[Result]]:
    """One stack: chats with every skill loaded, chats that load a 40 KB skill, then (the folder
    emptied; the registry sees it on its next scan) the same chats with no skills."""
    with tempfile.TemporaryDirectory() as data:
        stack = LocalStack(
            data_dir=Path(data),
            ports=StackPorts.free(),
            services=("tools", "skills", "runtime"),
            with_gateway=False,
            without_embeddings=True,
            extra_env={
                "DUCKLM_SKILLS_SKILLS_DIR": str(skills_dir),
                "DUCKLM_SKILLS_RESCAN_INTERVAL": "0",
                "DUCKLM_RUNTIME_RECALL_TOP_K": "0",
                # One step: the first model call is what is measured, and it must answer.
                "DUCKLM_RUNTIME_MAX_STEPS": "1",
                "DUCKLM_RUNTIME_MAX_REPLY_CHARS": "80",
            },
        )
        await stack.start(timeout=240)
        try:
            async with grpc.aio.insecure_channel(stack.address("runtime")) as channel:
                stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
                print("with every skill loaded:", flush=True)
                with_skills = [await chat(stub, request) for request in REQUESTS]
                print(f"with the 40 KB skill {long_skill} loaded by the person:", flush=True)
                long = [await chat(stub, request, long_skill) for request in REQUESTS[:1]]
                skills_dir.rename(skills_dir.with_name("moved-away"))
                skills_dir.mkdir()
                print("with no skills:", flush=True)
                without = [await chat(stub, request) for request in REQUESTS]
        finally:
            await stack.stop()
        return with_skills, long, without


def context_failed(results: list[Result]) -> int:
    return sum(1 for prompt, code in results if code in CONTEXT_FAILURES or prompt == 0)


async def main() -> int:
    role = load_models_config(repo_root() / "config" / "models.yaml").role("chat")
    assert role is not None
    window = role.context_window
    budget = int(window * RuntimeSettings().skill_catalogue_share)
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "skills"
        stats = write_corpus(corpus)
        print(f"skills: {stats.valid} valid of {stats.folders} folders; context window {window} tokens", flush=True)
        with_skills, long, without = await run(corpus, stats.long_bodies[0])
    extra = [a[0] - b[0] for a, b in zip(with_skills, without, strict=True) if a[0] and b[0]]
    failed = context_failed(with_skills) + context_failed(long)
    print(f"chats failed for context reasons (or with no model call): {failed} of "
          f"{len(with_skills) + len(long)} (target 0)")
    share = max(extra) / window if extra else 1.0
    print(f"skills catalogue in the first prompt: max {max(extra, default=0)} tokens = {100 * share:.1f}% "
          f"of the window (target <= 25%)")
    ratios = [a[0] / (b[0] + budget) for a, b in zip(with_skills, without, strict=True) if b[0]]
    worst = max(ratios) if ratios else 9.9
    print(f"first prompt with skills / (no skills + catalogue budget {budget}): worst {worst:.3f}x (target <= 1.10x); "
          f"added by the skills: {extra} tokens")
    print(f"first prompt with a 40 KB skill in use: {[r[0] for r in long]} tokens (window {window})")
    return 0 if failed == 0 and share <= 0.25 and worst <= 1.10 else 1


async def guarded() -> int:
    """main(), cancelled on SIGTERM (a `timeout` around the bench) so the stack is stopped."""
    task = asyncio.ensure_future(main())
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


if __name__ == "__main__":
    sys.exit(asyncio.run(guarded()))
