"""The Python client against running stacks: typed results, streamed events, approvals, skills,
memory, and errors that say what went wrong."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from ducklm.common.v1 import common_pb2
from ducklm_client import (
    AsyncClient,
    Client,
    Connection,
    InvalidArgumentError,
    NotFoundError,
    ServiceUnavailableError,
    TaskStatus,
    UnauthenticatedError,
)
from ducklm_client.errors import ApprovalRequiredError, EmbeddingsDisabledError, error_from_rpc

from deploy.stack import LocalStack
from services.common.testing import free_port
from services.skills.config import Settings as SkillsSettings
from services.skills.server import create_server as create_skills
from tests.clients.conftest import ScriptedStack, connect

WRITE = {
    "action": "call_tool",
    "tool": "write_file",
    "arguments": {"path": "from-client.txt", "content": "hello"},
}


@pytest.mark.model
async def test_chat_with_the_real_model_returns_a_typed_result(stack: LocalStack) -> None:
    async with connect(stack) as client:
        result = await client.chat("Say hi.")
        assert result.status is TaskStatus.COMPLETED
        assert result.reply.strip()
        task = await client.get_task(result.task_id)
        assert task.last_reply == result.reply
        assert task.steps >= 1 and task.usage.prompt_tokens > 0
        assert task.created is not None and task.updated is not None
        events = await client.list_events(result.task_id)
        assert [event.seq for event in events] == list(range(1, len(events) + 1))
        assert events[0].type == "task_created"
        assert any(
            event.type == "model_call" and event.data["usage"]["completion_tokens"] > 0 for event in events
        )
        assert result.task_id in [item.id for item in await client.list_tasks(limit=50)]
        replay = await client.replay(result.task_id)
        assert replay.matches, replay.mismatch
        assert replay.directives and replay.directives[-1]["message"] == result.reply


@pytest.mark.model
async def test_stream_chat_streams_tokens_then_the_message(stack: LocalStack) -> None:
    async with connect(stack) as client:
        events = [event async for event in client.stream_chat("Name one colour.")]
    assert events[0].task_id and all(event.task_id == events[0].task_id for event in events)
    types = [event.type for event in events]
    assert "model_token" in types and "assistant_message" in types
    # Live tokens come before the stored call they belong to, and carry seq 0.
    # The streamed tokens come before the stored record of the call that made them (the last one).
    last_call = len(types) - 1 - types[::-1].index("model_call")
    assert types.index("model_token") < last_call
    assert all(event.seq == 0 for event in events if event.type == "model_token")
    last = events[-1].payload
    assert isinstance(last, common_pb2.StatusChanged) and last.to == "completed"
    assert events[-1].data["to"] == "completed"  # the plain copy, for older callers


@pytest.mark.model
async def test_memory_remember_and_search_with_real_embeddings(stack: LocalStack) -> None:
    async with connect(stack) as client:
        memory = await client.remember(
            "The duck pond is behind the library.", kind="fact", tags=["client-test"]
        )
        found = await client.search("Where is the duck pond?", top_k=5, tags=["client-test"])
        assert memory.id in [hit.memory.id for hit in found.results]
        assert found.results[0].memory.text == "The duck pond is behind the library."
        assert (await client.get_memory(memory.id)).tags == ["client-test"]
        assert await client.forget(memory.id) == 1
        with pytest.raises(NotFoundError):
            await client.get_memory(memory.id)


async def test_approving_lets_the_waiting_task_go_on(scripted: ScriptedStack) -> None:
    scripted.script([WRITE, {"action": "finish", "message": "Wrote it."}])
    async with connect(scripted.stack) as client:
        result = await client.chat("Write hello to from-client.txt")
        assert result.status is TaskStatus.WAITING_APPROVAL and result.reply == ""
        approval_id = result.task.pending_approval_id
        pending = await client.list_approvals(task_id=result.task_id)
        assert [item.id for item in pending] == [approval_id]
        assert pending[0].tool == "write_file" and pending[0].arguments["path"] == "from-client.txt"
        assert pending[0].state == "pending"
        last_seq = (await client.list_events(result.task_id))[-1].seq
        approved = await client.approve(approval_id, decided_by="client-test")
        # Who decided is the approver credential's principal, not what the caller claims.
        assert approved.state == "approved" and approved.decided_by == "human via client"
        rest = [
            event async for event in client.stream_until_rest(result.task_id, after_seq=last_seq, timeout=60)
        ]
        assert rest[-1].data["to"] == "completed", rest
        assert any(isinstance(event.payload, common_pb2.ToolResult) and event.payload.ok for event in rest)
        assert (await client.get_task(result.task_id)).last_reply == "Wrote it."
    assert (scripted.workspace / "from-client.txt").read_text() == "hello"


async def test_denying_keeps_the_file_unwritten(scripted: ScriptedStack) -> None:
    denied_write = {**WRITE, "arguments": {"path": "denied.txt", "content": "no"}}
    scripted.script([denied_write, {"action": "finish", "message": "Understood, not writing."}])
    async with connect(scripted.stack) as client:
        result = await client.chat("Write denied.txt")
        last_seq = (await client.list_events(result.task_id))[-1].seq
        approval = await client.deny(
            result.task.pending_approval_id, decided_by="client-test", reason="not today"
        )
        assert approval.state == "denied" and approval.reason == "not today"
        last = [
            event async for event in client.stream_until_rest(result.task_id, after_seq=last_seq, timeout=60)
        ][-1]
        assert last.data["to"] == "completed"
    assert not (scripted.workspace / "denied.txt").exists()


async def test_skills_list_show_and_validate(scripted: ScriptedStack) -> None:
    async with connect(scripted.stack) as client:
        listing = await client.list_skills()
        assert "analyze-project" in [skill.name for skill in listing.skills]
        skill = await client.get_skill("analyze-project")
        assert skill.body.strip() and skill.description
        assert (await client.validate_skill(name="analyze-project")).valid
        bad = await client.validate_skill(skill_md="---\nname: Bad Name\n---\nbody\n", folder_name="bad-name")
        assert not bad.valid
        assert any(problem.field == "name" for problem in bad.problems), bad.problems


async def test_errors_say_what_went_wrong(scripted: ScriptedStack) -> None:
    async with connect(scripted.stack) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.get_task("no-such-task")
        assert missing.value.code == "NOT_FOUND" and missing.value.method == "GetTask"
        assert "runtime GetTask failed with NOT_FOUND" in str(missing.value)
        with pytest.raises(InvalidArgumentError, match="message must not be empty"):
            await client.chat("   ")
        with pytest.raises(ValueError, match="not one of"):
            await client.approve("whatever", scope="forever")
    async with AsyncClient(Connection(runtime=f"127.0.0.1:{free_port()}")) as nowhere:
        with pytest.raises(ServiceUnavailableError) as unreachable:
            await nowhere.get_task("x")
    assert "Is the runtime service running at 127.0.0.1:" in str(unreachable.value)
    assert "ducklm up" in str(unreachable.value)


def test_a_reason_in_metadata_picks_a_narrower_exception() -> None:
    metadata = grpc.aio.Metadata(("ducklm-error-reason", "EMBEDDINGS_DISABLED"))
    rpc_error = grpc.aio.AioRpcError(
        grpc.StatusCode.FAILED_PRECONDITION, metadata, grpc.aio.Metadata(), "no embedding role"
    )
    error = error_from_rpc(rpc_error, service="memory", method="Remember", address="127.0.0.1:50054")
    assert isinstance(error, EmbeddingsDisabledError) and error.reason == "EMBEDDINGS_DISABLED"
    assert "[EMBEDDINGS_DISABLED]" in str(error)
    metadata = grpc.aio.Metadata(("ducklm-error-reason", "APPROVAL_REQUIRED"))
    rpc_error = grpc.aio.AioRpcError(
        grpc.StatusCode.FAILED_PRECONDITION, metadata, grpc.aio.Metadata(), "needs approval"
    )
    assert isinstance(
        error_from_rpc(rpc_error, service="tools", method="ExecuteTool", address="x"), ApprovalRequiredError
    )


async def test_the_blocking_client_streams_and_approves(scripted: ScriptedStack) -> None:
    scripted.script(
        [
            {**WRITE, "arguments": {"path": "sync.txt", "content": "sync"}},
            {"action": "finish", "message": "ok"},
        ]
    )
    stack = scripted.stack

    def use_blocking_client() -> tuple[list[str], str]:
        connection = Connection(
            runtime=stack.address("runtime"), tools=stack.address("tools"), approver_token=stack.approver_token
        )
        with Client(connection) as client:
            events = list(client.stream_chat("write sync.txt"))
            waiting = client.get_task(events[0].task_id)
            client.approve(waiting.pending_approval_id, decided_by="sync-test")
            rest = list(client.stream_until_rest(waiting.id, after_seq=events[-1].seq))
            return [event.type for event in events + rest], rest[-1].data["to"]

    # The blocking client runs its own event loop, so it runs in a thread beside this one.
    types, final = await asyncio.to_thread(use_blocking_client)
    assert "approval_requested" in types and "approval_decided" in types
    assert final == "completed"
    assert (scripted.workspace / "sync.txt").read_text() == "sync"


async def test_stopping_a_stream_early_cancels_it(scripted: ScriptedStack) -> None:
    scripted.script([{"action": "finish", "message": "short"}])
    async with connect(scripted.stack) as client:
        task_id = (await client.chat("hi")).task_id
        # follow=True never ends by itself; leaving the loop must end the call.
        async for event in client.stream_events(task_id, follow=True):
            if event.type == "status_changed":
                break
        assert (await client.get_task(task_id)).status is TaskStatus.COMPLETED


def test_connection_reads_the_services_variables(tmp_path: Path) -> None:
    connection = Connection.from_env(
        {
            "DUCKLM_RUNTIME_ADDRESS": "0.0.0.0:6000",
            "DUCKLM_TOOLS_ADDRESS": "10.1.2.3:6001",
            "DUCKLM_GRPC_TOKEN": "secret-token",
        }
    )
    assert connection.runtime == "127.0.0.1:6000"
    assert connection.tools == "10.1.2.3:6001"
    assert connection.skills == "127.0.0.1:50053"
    assert connection.token == "secret-token"
    assert connection.with_addresses(memory="h:1", skills=None).memory == "h:1"
    with pytest.raises(ValueError, match="unknown services"):
        connection.with_addresses(gateway="h:2")


async def test_the_token_is_sent_when_the_services_require_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUCKLM_GRPC_TOKEN", "a-long-shared-test-token")
    server = await create_skills(
        SkillsSettings(
            address="127.0.0.1:0", database=tmp_path / "skills.db", proposals_dir=tmp_path / "proposals"
        )
    )
    try:
        with_token = Connection(skills=server.address, token="a-long-shared-test-token")
        async with AsyncClient(with_token) as client:
            assert "analyze-project" in [skill.name for skill in (await client.list_skills()).skills]
        async with AsyncClient(Connection(skills=server.address)) as client:
            with pytest.raises(UnauthenticatedError, match="DUCKLM_GRPC_TOKEN"):
                await client.list_skills()
            # Health stays open without the token, as probes need.
            assert (await client.health(timeout=2))["skills"] == "serving"
    finally:
        await server.stop(grace=1.0)
