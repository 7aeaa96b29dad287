"""The loop with the real tools, approvals and skills services (in-process, real gRPC) and a
scripted model deciding each directive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc

from services.common.server import GrpcServer
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.server import create_server as create_runtime
from services.runtime.states import TaskStatus
from services.runtime.store import TaskStore
from tests.runtime.conftest import Peers, write_models_file
from tests.scripted_model import ScriptedModel
from tests.tools.support import HUMAN
from tests.waits import recorded_experiences


def settings_for(tmp_path: Path, model: ScriptedModel, peers: Peers, **overrides: object) -> RuntimeSettings:
    return RuntimeSettings(
        address="127.0.0.1:0",
        database=tmp_path / "runtime.db",
        models_file=write_models_file(tmp_path / "models.yaml", model.endpoint),
        tools_address=peers.tools.address,
        skills_address=peers.skills.address,
        memory_address=peers.memory_address,
        approval_retry_seconds=0.05,
        max_steps=6,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
async def runtime(tmp_path: Path, scripted_model: ScriptedModel, peers: Peers) -> AsyncIterator[GrpcServer]:
    server = await create_runtime(settings_for(tmp_path, scripted_model, peers))
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


@pytest.fixture
async def stub(runtime: GrpcServer) -> AsyncIterator[runtime_pb2_grpc.RuntimeServiceAsyncStub]:
    async with grpc.aio.insecure_channel(runtime.address) as channel:
        yield runtime_pb2_grpc.RuntimeServiceStub(channel)


@pytest.fixture
async def approvals(peers: Peers) -> AsyncIterator[approvals_pb2_grpc.ApprovalsServiceAsyncStub]:
    async with grpc.aio.insecure_channel(peers.tools.address) as channel:
        yield approvals_pb2_grpc.ApprovalsServiceStub(channel)


async def events_of(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, task_id: str) -> list[tuple[str, dict[str, object]]]:
    reply = await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task_id, page_size=1000))
    return [
        (common_pb2.EventType.Name(e.type).removeprefix("EVENT_TYPE_").lower(), dict(e.data.items())) for e in reply.events
    ]


async def wait_for_status(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, task_id: str, status: int) -> runtime_pb2.Task:
    for _ in range(200):
        task = await stub.GetTask(runtime_pb2.GetTaskRequest(task_id=task_id))
        if task.status == status:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task stayed {common_pb2.TaskStatus.Name(task.status)}")


async def test_a_task_lists_the_workspace_through_a_tool_and_answers(
    stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel, peers: Peers
) -> None:
    (peers.workspace / "notes.txt").write_text("hello")
    scripted_model.script([
        {"action": "call_tool", "tool": "list_dir", "arguments": {}},
        {"action": "finish", "message": "There is notes.txt."},
    ])
    reply = await stub.Chat(runtime_pb2.ChatRequest(message="What is in my workspace?"))
    assert reply.task.status == common_pb2.TASK_STATUS_COMPLETED
    assert reply.reply == "There is notes.txt."
    events = await events_of(stub, reply.task.id)
    results = [data for kind, data in events if kind == "tool_result"]
    assert len(results) == 1 and results[0]["ok"] is True
    assert "notes.txt" in str(results[0]["result"])
    # The step schema named the real tools, each with its own argument schema.
    schema = scripted_model.requests[0]["response_format"]["json_schema"]["schema"]
    tools = {b["properties"]["tool"]["const"] for b in schema["oneOf"] if b["properties"]["action"].get("const") == "call_tool"}
    assert {"list_dir", "read_file", "write_file", "run_command"} <= tools
    # The second prompt carries the tool's result and keeps the first prompt as its prefix.
    first, second = scripted_model.requests[0]["messages"], scripted_model.requests[1]["messages"]
    assert second[: len(first)] == first and "notes.txt" in second[-1]["content"]
    replay = await stub.ReplayTask(runtime_pb2.ReplayTaskRequest(task_id=reply.task.id))
    assert replay.matches, replay.mismatch
    assert len(replay.directives) == 2


async def test_a_gated_write_waits_for_approval_then_completes(
    stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, approvals: approvals_pb2_grpc.ApprovalsServiceAsyncStub,
    scripted_model: ScriptedModel, peers: Peers,
) -> None:
    scripted_model.script([
        {"action": "call_tool", "tool": "write_file", "arguments": {"path": "out.txt", "content": "written by duck"}},
        {"action": "finish", "message": "Saved."},
    ])
    reply = await stub.Chat(runtime_pb2.ChatRequest(message="Save a note"))
    assert reply.task.status == common_pb2.TASK_STATUS_WAITING_APPROVAL
    assert reply.task.pending_approval_id and reply.reply == ""
    assert not (peers.workspace / "out.txt").exists()
    approval = await approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=reply.task.pending_approval_id))
    assert approval.tool_name == "write_file" and approval.task_id == reply.task.id

    await approvals.Approve(approvals_pb2.ApproveRequest(approval_id=approval.id), metadata=HUMAN)
    task = await wait_for_status(stub, reply.task.id, common_pb2.TASK_STATUS_COMPLETED)
    assert task.last_reply == "Saved."
    assert (peers.workspace / "out.txt").read_text() == "written by duck"
    kinds = [kind for kind, _ in await events_of(stub, task.id)]
    assert kinds.index("approval_requested") < kinds.index("approval_decided") < kinds.index("tool_result")
    assert kinds.count("tool_result") == 1
    # The approval was single-use: it is spent, and the replay reproduces the run without one.
    spent = await approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=approval.id))
    assert spent.state == approvals_pb2.APPROVAL_STATE_USED
    replay = await stub.ReplayTask(runtime_pb2.ReplayTaskRequest(task_id=task.id))
    assert replay.matches, replay.mismatch


async def test_a_denied_approval_is_told_to_the_model_and_the_task_ends_cleanly(
    stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, approvals: approvals_pb2_grpc.ApprovalsServiceAsyncStub,
    scripted_model: ScriptedModel, peers: Peers,
) -> None:
    scripted_model.script([
        {"action": "call_tool", "tool": "write_file", "arguments": {"path": "no.txt", "content": "x"}},
        {"action": "respond", "message": "Understood, I did not write it."},
    ])
    reply = await stub.Chat(runtime_pb2.ChatRequest(message="Write no.txt"))
    await approvals.Deny(approvals_pb2.DenyRequest(approval_id=reply.task.pending_approval_id, reason="not now"), metadata=HUMAN)
    task = await wait_for_status(stub, reply.task.id, common_pb2.TASK_STATUS_COMPLETED)
    assert task.last_reply == "Understood, I did not write it."
    assert not (peers.workspace / "no.txt").exists()
    result = next(data for kind, data in await events_of(stub, task.id) if kind == "tool_result")
    assert result["ok"] is False and "denied" in str(result["error"]) and "not now" in str(result["error"])
    assert "denied" in scripted_model.requests[-1]["messages"][-1]["content"]


async def test_a_skill_is_loaded_on_use_and_binds_the_turn_to_its_allowed_tools(
    stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script([
        {"action": "use_skill", "skill": "analyze-project"},
        {"action": "call_tool", "tool": "write_file", "arguments": {"path": "x", "content": "y"}},
        {"action": "call_tool", "tool": "list_dir", "arguments": {}},
        {"action": "call_tool", "tool": "find_files", "arguments": {"pattern": "*"}},
        {"action": "call_tool", "tool": "list_dir", "arguments": {"path": "."}},
        {"action": "finish", "message": "Project: empty"},
    ])
    reply = await stub.Chat(runtime_pb2.ChatRequest(message="Analyze the project"))
    assert reply.task.status == common_pb2.TASK_STATUS_COMPLETED
    events = await events_of(stub, reply.task.id)
    used = next(data for kind, data in events if kind == "skill_used")
    assert "Analyze a project" in str(used["body"])
    # Only the name and description were in the context before; the body after use_skill.
    assert "Analyze a project" not in scripted_model.requests[0]["messages"][0]["content"]
    assert "analyze-project" in scripted_model.requests[0]["messages"][0]["content"]
    assert "Analyze a project" in scripted_model.requests[1]["messages"][-1]["content"]
    # After use_skill, the schema offers only the skill's allowed tools, so write_file is refused.
    schema = scripted_model.requests[1]["response_format"]["json_schema"]["schema"]
    offered = {b["properties"]["tool"]["const"] for b in schema["oneOf"] if b["properties"]["action"].get("const") == "call_tool"}
    assert offered == {"list_dir", "find_files", "read_file", "stat_path"}
    errors = [data for kind, data in events if kind == "error"]
    assert len(errors) == 1 and errors[0]["code"] == "invalid_directive"
    assert [data["tool"] for kind, data in events if kind == "tool_call"] == ["list_dir", "find_files", "list_dir"]


async def test_a_finished_turn_is_recorded_as_experience_and_reflection_proposes_a_skill(
    stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel, peers: Peers
) -> None:
    scripted_model.script([
        {"action": "call_tool", "tool": "list_dir", "arguments": {}},
        {"action": "finish", "message": "Empty."},
    ])
    task = (await stub.Chat(runtime_pb2.ChatRequest(message="List my files"))).task
    async with grpc.aio.insecure_channel(peers.skills.address) as channel:
        skills = skills_pb2_grpc.SkillsServiceStub(channel)
        experiences = await recorded_experiences(skills, task.id)
        assert len(experiences) == 1
        experience = experiences[0]
        assert experience.goal == "List my files" and experience.outcome == skills_pb2.OUTCOME_COMPLETED
        assert list(experience.tools_used) == ["list_dir"] and experience.steps == 2
        assert experience.final_answer == "Empty."

        scripted_model.script([{"decision": "propose", "name": "list-files", "description": "Lists the workspace.",
                                "steps": ["Call list_dir.", "Report the names."]}])
        reflected = await stub.Reflect(runtime_pb2.ReflectRequest(experience_ids=[experience.id]))
        assert reflected.proposal_id
        proposal = await skills.GetProposal(skills_pb2.GetProposalRequest(proposal_id=reflected.proposal_id))
        assert proposal.state == skills_pb2.PROPOSAL_STATE_PENDING and not proposal.problems
        assert list(proposal.experience_ids) == [experience.id]
        assert proposal.event_refs and all(ref.startswith(task.id + ":") for ref in proposal.event_refs)
        # A proposal is never a skill until a human promotes it.
        names = {s.name for s in (await skills.ListSkills(skills_pb2.ListSkillsRequest())).skills}
        assert "list-files" not in names

        scripted_model.script([{"decision": "none", "reason": "nothing reusable"}])
        nothing = await stub.Reflect(runtime_pb2.ReflectRequest(experience_ids=[experience.id]))
        assert nothing.proposal_id == "" and "nothing reusable" in nothing.outcome


async def test_long_tasks_are_compacted_explicitly(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers
) -> None:
    models_file = tmp_path / "small.yaml"
    models_file.write_text(yaml.safe_dump({"roles": {"chat": {
        "endpoint": scripted_model.endpoint, "model": "scripted", "context_window": 1200, "max_tokens": 64}}}))
    settings = settings_for(tmp_path, scripted_model, peers, compact_keep_events=2)
    settings.models_file = models_file
    server = await create_runtime(settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            task_id = ""
            for turn in range(4):
                scripted_model.script([{"summary": "The user sent long messages."}, {"action": "respond", "message": f"ok {turn}"}])
                reply = await stub.Chat(runtime_pb2.ChatRequest(message="word " * 190, task_id=task_id))
                task_id = reply.task.id
                assert reply.task.status == common_pb2.TASK_STATUS_COMPLETED, reply.task.error
            events = await events_of(stub, task_id)
    finally:
        await server.stop(grace=1.0)
    compactions = [data for kind, data in events if kind == "context_compacted"]
    assert compactions and compactions[-1]["summary"] == "The user sent long messages."
    assert any(kind == "model_call" and data.get("purpose") == "compaction" for kind, data in events)
    last_prompt = scripted_model.requests[-1]["messages"]
    assert "Summary of the conversation so far" in last_prompt[1]["content"]


async def test_a_restart_while_waiting_for_approval_resumes_once_approved(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers, approvals: approvals_pb2_grpc.ApprovalsServiceAsyncStub
) -> None:
    settings = settings_for(tmp_path, scripted_model, peers)
    scripted_model.script([
        {"action": "call_tool", "tool": "write_file", "arguments": {"path": "later.txt", "content": "after restart"}},
        {"action": "finish", "message": "Done after restart."},
    ])
    server = await create_runtime(settings)
    async with grpc.aio.insecure_channel(server.address) as channel:
        task = (await runtime_pb2_grpc.RuntimeServiceStub(channel).Chat(runtime_pb2.ChatRequest(message="write it"))).task
    await server.stop(grace=0)
    await approvals.Approve(approvals_pb2.ApproveRequest(approval_id=task.pending_approval_id), metadata=HUMAN)
    server = await create_runtime(settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            done = await wait_for_status(stub, task.id, common_pb2.TASK_STATUS_COMPLETED)
            assert done.last_reply == "Done after restart."
    finally:
        await server.stop(grace=1.0)
    assert (peers.workspace / "later.txt").read_text() == "after restart"


@pytest.mark.parametrize(("tool", "arguments", "rerun"), [
    ("list_dir", {}, True),
    ("write_file", {"path": "maybe.txt", "content": "?"}, False),
])
async def test_a_tool_call_cut_off_by_a_crash_is_rerun_only_if_read_only(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers, tool: str, arguments: dict[str, object], rerun: bool
) -> None:
    settings = settings_for(tmp_path, scripted_model, peers)
    store = await TaskStore.open(settings.database)
    task = await store.create_task("crash")
    crashed: list[tuple[str, dict[str, Any]]] = [
        ("task_created", {"message": "crash"}), ("user_message", {"text": "crash"}),
        ("directive", {"action": "call_tool", "tool": tool, "arguments": arguments, "raw": "{}"}),
        ("tool_call", {"call_id": "c1", "tool": tool, "arguments": arguments}),
    ]
    for kind, data in crashed:
        await store.append_event(task.id, kind, data)
    await store.set_status(task.id, TaskStatus.RUNNING)
    await store.close()

    scripted_model.script([{"action": "finish", "message": "recovered"}])
    server = await create_runtime(settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            await wait_for_status(stub, task.id, common_pb2.TASK_STATUS_COMPLETED)
            results = [data for kind, data in await events_of(stub, task.id) if kind == "tool_result"]
    finally:
        await server.stop(grace=1.0)
    assert len(results) == 1
    assert results[0]["ok"] is rerun
    if not rerun:
        assert results[0]["interrupted"] is True and "not repeated" in str(results[0]["error"])
        assert not (peers.workspace / "maybe.txt").exists()


async def test_a_chat_can_name_the_skill_to_use(
    stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script([
        *[{"action": "call_tool", "tool": "list_dir", "arguments": {}}] * 3, {"action": "finish", "message": "ok"},
    ])
    reply = await stub.Chat(runtime_pb2.ChatRequest(message="What is this project?", skill="analyze-project"))
    assert reply.task.status == common_pb2.TASK_STATUS_COMPLETED
    kinds = [kind for kind, _ in await events_of(stub, reply.task.id)]
    assert kinds.index("skill_used") < kinds.index("model_call")
    first_schema = scripted_model.requests[0]["response_format"]["json_schema"]["schema"]
    offered = {b["properties"]["tool"]["const"] for b in first_schema["oneOf"] if b["properties"]["action"].get("const") == "call_tool"}
    assert offered == {"list_dir", "find_files", "read_file", "stat_path"}
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.Chat(runtime_pb2.ChatRequest(message="x", skill="no-such-skill"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_skill_can_require_tool_calls_before_an_answer(
    stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    # analyze-project sets ducklm-min-tool-calls: "3" in its metadata.
    scripted_model.script([
        {"action": "finish", "message": "too early"},
        {"action": "call_tool", "tool": "list_dir", "arguments": {}},
        {"action": "call_tool", "tool": "find_files", "arguments": {"pattern": "*"}},
        {"action": "call_tool", "tool": "list_dir", "arguments": {"path": "."}},
        {"action": "finish", "message": "Project: empty"},
    ])
    reply = await stub.Chat(runtime_pb2.ChatRequest(message="What is this?", skill="analyze-project"))
    assert reply.reply == "Project: empty"
    schemas = [r["response_format"]["json_schema"]["schema"] for r in scripted_model.requests]
    actions = [{b["properties"]["action"]["const"] for b in s.get("oneOf", [s])} for s in schemas]
    assert actions[:4] == [{"call_tool"}] * 4  # the refused early answer, then three tool calls
    assert "finish" in actions[4]
    # The system prompt (and so the cached prefix) is the same at every step.
    assert len({r["messages"][0]["content"] for r in scripted_model.requests}) == 1


async def test_cancelling_a_waiting_task_withdraws_its_approval(
    stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, approvals: approvals_pb2_grpc.ApprovalsServiceAsyncStub,
    scripted_model: ScriptedModel,
) -> None:
    scripted_model.script([{"action": "call_tool", "tool": "write_file", "arguments": {"path": "a", "content": "b"}}])
    task = (await stub.Chat(runtime_pb2.ChatRequest(message="write"))).task
    cancelled = await stub.CancelTask(runtime_pb2.CancelTaskRequest(task_id=task.id, reason="changed my mind"))
    assert cancelled.status == common_pb2.TASK_STATUS_CANCELLED
    approval = await approvals.GetApproval(approvals_pb2.GetApprovalRequest(approval_id=task.pending_approval_id))
    assert approval.state == approvals_pb2.APPROVAL_STATE_DENIED and "cancelled" in approval.reason


async def test_a_badly_formed_skill_name_is_an_invalid_argument(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.Chat(runtime_pb2.ChatRequest(message="x", skill="Not A Name!"))
    assert bad.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)


async def test_a_context_that_cannot_fit_fails_once_with_a_clear_error(
    tmp_path: Path, scripted_model: ScriptedModel, peers: Peers
) -> None:
    models_file = tmp_path / "tiny.yaml"
    models_file.write_text(yaml.safe_dump({"roles": {"chat": {
        "endpoint": scripted_model.endpoint, "model": "scripted", "context_window": 900, "max_tokens": 64}}}))
    settings = settings_for(tmp_path, scripted_model, peers)
    settings.models_file = models_file
    server = await create_runtime(settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            reply = await stub.Chat(runtime_pb2.ChatRequest(message="word " * 2000))
            events = await events_of(stub, reply.task.id)
    finally:
        await server.stop(grace=1.0)
    assert reply.task.status == common_pb2.TASK_STATUS_FAILED and "context window is full" in reply.task.error
    errors = [data for kind, data in events if kind == "error"]
    assert [e["code"] for e in errors] == ["context_full"]
    assert [data["to"] for kind, data in events if kind == "status_changed"].count("failed") == 1
