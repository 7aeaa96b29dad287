"""Reflection benchmark: how often the default model, shown a finished task's steps, proposes a
skill that passes validation. Runs a few workspace tasks through the real runtime, tools and
skills services and the real llama-server, reflects on each experience, and prints the outcome
of every reflection and the share of valid proposals (no target: the figure is reported as it is).

Run with `.venv/bin/python scripts/bench/reflection_bench.py` (after `make llama-server model`).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from pathlib import Path

import grpc
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc

from deploy.stack import LocalStack, StackPorts

TASKS = (
    "List the files in my workspace.",
    "Read notes.txt and tell me what it says.",
    "Find every Markdown file in the workspace.",
)


async def main() -> int:
    with tempfile.TemporaryDirectory() as data:
        workspace = Path(data) / "workspace"
        (workspace / "docs").mkdir(parents=True)
        (workspace / "notes.txt").write_text("Buy bread. Call Ana at five.\n")
        (workspace / "docs" / "guide.md").write_text("# Guide\n")
        (workspace / "README.md").write_text("# Demo project\n")
        stack = LocalStack(
            data_dir=Path(data),
            ports=StackPorts.free(),
            services=("tools", "skills", "runtime"),
            with_gateway=False,
            without_embeddings=True,
            extra_env={
                "DUCKLM_TOOLS_WORKSPACE_DIR": str(workspace),
                "DUCKLM_RUNTIME_RECALL_TOP_K": "0",
                "DUCKLM_RUNTIME_MAX_STEPS": "3",
                "DUCKLM_RUNTIME_MAX_REPLY_CHARS": "120",
            },
        )
        await stack.start(timeout=240)
        outcomes: list[str] = []
        try:
            async with grpc.aio.insecure_channel(stack.address("runtime")) as runtime_channel, \
                    grpc.aio.insecure_channel(stack.address("skills")) as skills_channel:
                runtime = runtime_pb2_grpc.RuntimeServiceStub(runtime_channel)
                skills = skills_pb2_grpc.SkillsServiceStub(skills_channel)
                for task in TASKS:
                    reply = await runtime.Chat(runtime_pb2.ChatRequest(message=task), timeout=600)
                    listed = await skills.ListExperiences(
                        skills_pb2.ListExperiencesRequest(task_id=reply.task.id, page_size=5)
                    )
                    if not listed.experiences:
                        outcomes.append("no experience recorded")
                        continue
                    reflected = await runtime.Reflect(
                        runtime_pb2.ReflectRequest(experience_ids=[listed.experiences[0].id]), timeout=600
                    )
                    outcome = reflected.outcome
                    if reflected.proposal_id:
                        proposal = await skills.GetProposal(
                            skills_pb2.GetProposalRequest(proposal_id=reflected.proposal_id)
                        )
                        valid = proposal.state == skills_pb2.PROPOSAL_STATE_PENDING
                        outcome = f"{'valid' if valid else 'invalid'} proposal {proposal.name} ({len(proposal.event_refs)} event refs)"
                    outcomes.append(outcome)
                    print(f"  {task!r}: {outcome[:160]}", flush=True)
        finally:
            await stack.stop()
    valid_count = sum(1 for outcome in outcomes if outcome.startswith("valid proposal"))
    print(f"reflection proposed a valid skill in {valid_count} of {len(outcomes)} finished tasks")
    return 0


async def guarded() -> int:
    """main(), cancelled on SIGTERM (a `timeout` around the bench) so the stack is stopped."""
    task = asyncio.ensure_future(main())
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


if __name__ == "__main__":
    sys.exit(asyncio.run(guarded()))
