"""Multi-step tasks, the starter skill, experience and reflection, with the real llama-server
and the real SmolLM2-135M model: whatever the model picks, every directive is valid and every
task ends. These assert what must hold for any model; they print the cache figures they see."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
import pytest
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc

from deploy.stack import LocalStack, StackPorts
from services.common.auth import approver_metadata
from tests.waits import recorded_experiences

pytestmark = pytest.mark.model

REST = ("completed", "failed", "cancelled", "waiting_approval")


async def run_to_end(gateway: httpx.AsyncClient, stack: LocalStack, body: dict[str, Any]) -> dict[str, Any]:
    """Sends a message and sees the task to its end, approving whatever it asks for."""
    reply = (await gateway.post("/v1/chat", json=body)).json()
    task_id = reply["task_id"]
    async with grpc.aio.insecure_channel(stack.address("tools")) as channel:
        approvals = approvals_pb2_grpc.ApprovalsServiceStub(channel)
        # The task reads "waiting_approval" until the runtime picks a decision up: approve once.
        approved: set[str] = set()
        for _ in range(600):
            task: dict[str, Any] = (await gateway.get(f"/v1/tasks/{task_id}")).json()
            if task["status"] == "waiting_approval":
                if task["pending_approval_id"] not in approved:
                    approved.add(task["pending_approval_id"])
                    await approvals.Approve(
                        approvals_pb2.ApproveRequest(approval_id=task["pending_approval_id"]),
                        metadata=approver_metadata(stack.approver_token, "test"),
                    )
            elif task["status"] in REST:
                return task
            await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} did not end")


async def events(gateway: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await gateway.get(f"/v1/tasks/{task_id}/events", params={"page_size": 1000})).json()["events"]
    return listed


def cache_figures(task_events: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(prompt tokens evaluated, prompt tokens from cache) per model call of the task's prompt.
    Calibration calls (`stage: calibrate`) are not: after a task's first step they run on a slot
    no task holds, so as not to evict the task's prompt, and that slot may hold none of theirs."""
    return [
        (e["data"]["timings"].get("prompt_n", 0), e["data"]["timings"].get("cache_n", 0))
        for e in task_events if e["type"] == "model_call" and e["data"].get("stage") != "calibrate"
    ]


@pytest.mark.parametrize(
    "message",
    [
        "List the files in my workspace.",
        "Read the file notes.txt and tell me what it says.",
        "Create a file called hello.txt that says hi.",
        "Find all text files and count them.",
    ],
)
async def test_multi_step_tasks_end_with_every_directive_valid(
    gateway: httpx.AsyncClient, stack: LocalStack, message: str
) -> None:
    workspace = stack.data_dir / "workspace"
    workspace.mkdir(exist_ok=True)
    (workspace / "notes.txt").write_text("The meeting is on Friday.\n")
    task = await run_to_end(gateway, stack, {"message": message})
    assert task["status"] == "completed", task
    assert task["last_reply"].strip()
    log = await events(gateway, task["id"])
    # Every directive was valid (a repeated call is refused by the runtime, not an invalid output).
    invalid = [e["data"] for e in log if e["type"] == "error" and e["data"].get("code") == "invalid_directive"]
    assert not invalid, invalid
    directives = [e["data"] for e in log if e["type"] == "directive"]
    assert directives and directives[-1]["action"] in ("respond", "finish")
    figures = cache_figures(log)
    print(f"\n{message!r}: {len(directives)} directive(s); (evaluated, cached) prompt tokens per call: {figures}")
    assert all(evaluated + cached > 0 for evaluated, cached in figures)
    # From the second call of a task on, the prompt's prefix comes from llama-server's cache.
    assert all(cached > 0 for _, cached in figures[1:])


async def test_the_starter_skill_analyzes_a_project_with_the_tiny_model(
    gateway: httpx.AsyncClient, stack: LocalStack
) -> None:
    project = stack.data_dir / "workspace" / "demo"
    (project / "src").mkdir(parents=True, exist_ok=True)
    (project / "tests").mkdir(exist_ok=True)
    (project / "README.md").write_text("# Demo\nA tiny calculator.\n")
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (project / "src" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (project / "tests" / "test_calc.py").write_text("from calc import add\n")
    task = await run_to_end(gateway, stack, {"message": "Analyze the project in the folder demo.", "skill": "analyze-project"})
    assert task["status"] == "completed", task
    log = await events(gateway, task["id"])
    assert [e["data"]["skill"] for e in log if e["type"] == "skill_used"] == ["analyze-project"]
    assert not [e for e in log if e["type"] == "error" and e["data"].get("code") == "invalid_directive"]
    tools = [e["data"]["tool"] for e in log if e["type"] == "tool_call"]
    assert set(tools) <= {"list_dir", "find_files", "read_file", "stat_path"}
    print(f"\nanalyze-project: tools {tools}; answer {task['last_reply']!r}")
    assert task["last_reply"].strip()


async def test_a_finished_task_is_recorded_and_reflection_never_adds_an_invalid_skill(
    gateway: httpx.AsyncClient, stack: LocalStack
) -> None:
    task = await run_to_end(gateway, stack, {"message": "List the files in my workspace."})
    async with grpc.aio.insecure_channel(stack.address("skills")) as channel:
        skills = skills_pb2_grpc.SkillsServiceStub(channel)
        found = await recorded_experiences(skills, task["id"])
        assert len(found) == 1 and found[0].goal == "List the files in my workspace."
        assert found[0].outcome == skills_pb2.OUTCOME_COMPLETED and found[0].steps >= 1
        before = await skills.ListSkills(skills_pb2.ListSkillsRequest())

        async with grpc.aio.insecure_channel(stack.address("runtime")) as runtime_channel:
            runtime = runtime_pb2_grpc.RuntimeServiceStub(runtime_channel)
            result = await runtime.Reflect(runtime_pb2.ReflectRequest(experience_ids=[found[0].id]), timeout=300)
        print(f"\nreflection: proposal {result.proposal_id or '-'}; {result.outcome}")
        assert result.outcome
        if result.proposal_id:
            proposal = await skills.GetProposal(skills_pb2.GetProposalRequest(proposal_id=result.proposal_id))
            assert proposal.state in (skills_pb2.PROPOSAL_STATE_PENDING, skills_pb2.PROPOSAL_STATE_INVALID)
            assert list(proposal.experience_ids) == [found[0].id]
        else:
            assert result.outcome.startswith("no skill")
        after = await skills.ListSkills(skills_pb2.ListSkillsRequest())
    assert [s.name for s in after.skills] == [s.name for s in before.skills]
    assert not after.invalid_skills


async def test_a_conversations_memory_reaches_another_conversation_only_once_promoted(
    gateway: httpx.AsyncClient, stack: LocalStack
) -> None:
    first = await run_to_end(gateway, stack, {"message": "My cat is called Pixel."})
    async with grpc.aio.insecure_channel(stack.address("memory")) as channel:
        memory = memory_pb2_grpc.MemoryServiceStub(channel)
        # Noted in the first conversation (its task scope), as the model's `remember` does.
        fact = await memory.Remember(memory_pb2.RememberRequest(text="The user's cat is called Pixel.", task_id=first["id"], kind="fact"))
        await memory.Remember(memory_pb2.RememberRequest(text="The build uses GNU make.", kind="fact", scope=memory_pb2.MEMORY_SCOPE_LONG_TERM))
        collections = (await memory.ListCollections(memory_pb2.ListCollectionsRequest())).collections
        assert fact.scope == memory_pb2.MEMORY_SCOPE_TASK
        # The collection follows the real embedding model: all-MiniLM-L6-v2, 384 dimensions.
        active = next(c for c in collections if c.name == fact.collection)
        assert active.dimension == 384 and active.embedding_model == "all-MiniLM-L6-v2"

        second = await run_to_end(gateway, stack, {"message": "What is my cat called?"})
        recalled = [e["data"] for e in await events(gateway, second["id"]) if e["type"] == "memory_recalled"]
        assert recalled and recalled[0]["automatic"] is True
        assert fact.id not in recalled[0]["memory_ids"]
        assert "pixel" not in second["last_reply"].lower()
        print(f"\nunpromoted, recalled for 'What is my cat called?': {recalled[0].get('memories')}")

        await memory.PromoteMemory(memory_pb2.PromoteMemoryRequest(memory_id=fact.id))
    third = await run_to_end(gateway, stack, {"message": "What is my cat called?"})
    recalled = [e["data"] for e in await events(gateway, third["id"]) if e["type"] == "memory_recalled"]
    print(f"promoted, recalled for 'What is my cat called?': {recalled[0]['memories']}")
    scores = {m["id"]: m["score"] for m in recalled[0]["memories"]}
    assert fact.id in scores and scores[fact.id] == max(scores.values())


async def test_without_an_embedding_role_memory_says_embeddings_are_disabled(tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = tmp_path_factory.mktemp("no-embeddings")
    stack = LocalStack(data_dir=data_dir, ports=StackPorts.free(), log_dir=data_dir / "logs",
                       without_embeddings=True, services=("runtime", "memory"), with_gateway=False)
    await stack.start(timeout=120)
    try:
        async with grpc.aio.insecure_channel(stack.address("memory")) as channel:
            memory = memory_pb2_grpc.MemoryServiceStub(channel)
            call = memory.Remember(memory_pb2.RememberRequest(text="anything", scope=memory_pb2.MEMORY_SCOPE_LONG_TERM))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            collections = (await memory.ListCollections(memory_pb2.ListCollectionsRequest())).collections
    finally:
        await stack.stop()
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "embeddings are disabled" in (refused.value.details() or "")
    assert ("ducklm-error-reason", "EMBEDDINGS_DISABLED") in tuple(await call.initial_metadata())
    assert all(collection.count == 0 for collection in collections)  # nothing written half-way
