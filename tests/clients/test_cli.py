"""The `ducklm` command line, run as the installed console script against running stacks: chat
(one-shot, and interactive in a real pseudo-terminal answering an approval y/n), tasks, events,
approve/deny, skills, memory, replay and health."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import grpc
import pytest
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc
from ducklm_client import AsyncClient, TaskStatus

from deploy.stack import LocalStack
from services.common.config import repo_root
from tests.clients.conftest import DUCKLM, ScriptedStack, client_env, connect, ducklm
from tests.clients.terminal import Terminal


def write(path: str, content: str) -> dict[str, object]:
    return {"action": "call_tool", "tool": "write_file", "arguments": {"path": path, "content": content}}


async def wait_until_rest(client: AsyncClient, task_id: str) -> TaskStatus:
    for _ in range(300):
        task = await client.get_task(task_id)
        if task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
            return task.status
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish")


@pytest.mark.model
async def test_chat_once_streams_the_real_models_reply(stack: LocalStack) -> None:
    finished = await ducklm("chat", "Name one colour.", env=client_env(stack))
    assert finished.code == 0, finished.stderr
    task_id = finished.stderr.split("(task ", 1)[1].split(")", 1)[0]
    async with connect(stack) as client:
        task = await client.get_task(task_id)
    assert task.status is TaskStatus.COMPLETED
    assert f"duck> {task.last_reply}" in finished.stdout

    tasks = await ducklm("tasks", "--json", env=client_env(stack))
    assert task_id in [item["id"] for item in json.loads(tasks.stdout)]
    events = await ducklm("events", task_id, env=client_env(stack))
    assert events.code == 0
    assert "task_created" in events.stdout and "assistant_message" in events.stdout
    replay = await ducklm("replay", task_id, env=client_env(stack))
    assert replay.code == 0, replay.stdout + replay.stderr
    assert "matches the recorded run" in replay.stdout


@pytest.mark.model
async def test_memory_commands_with_real_embeddings(stack: LocalStack) -> None:
    remembered = await ducklm(
        "memory", "remember", "Ducks like bread crumbs.", "--tag", "cli-test", "--json", env=client_env(stack)
    )
    assert remembered.code == 0, remembered.stderr
    memory_id = json.loads(remembered.stdout)["id"]
    found = await ducklm(
        "memory", "search", "What do ducks like?", "--tag", "cli-test", env=client_env(stack)
    )
    assert found.code == 0 and memory_id in found.stdout and "Ducks like bread crumbs." in found.stdout
    forgot = await ducklm("memory", "forget", memory_id, env=client_env(stack))
    assert forgot.code == 0 and "forgot 1 memory" in forgot.stdout


@pytest.mark.model
async def test_memory_list_promote_and_forget_a_scope(stack: LocalStack) -> None:
    env, task = client_env(stack), "cli-task-7"
    noted = await ducklm("memory", "remember", "The heron nests by the weir.", "--task", task, "--json", env=env)
    assert noted.code == 0, noted.stderr
    memory_id = json.loads(noted.stdout)["id"]
    assert json.loads(noted.stdout)["scope"] == "task"
    listed = await ducklm("memory", "list", "--task", task, env=env)
    assert listed.code == 0 and memory_id in listed.stdout and f"task {task}" in listed.stdout
    assert "1 of 1" in listed.stdout
    promoted = await ducklm("memory", "promote", memory_id, env=env)
    assert promoted.code == 0 and "kept long-term" in promoted.stdout
    long_term = await ducklm("memory", "list", "--scope", "long_term", "--text", "HERON", "--json", env=env)
    assert [m["id"] for m in json.loads(long_term.stdout)["memories"]] == [memory_id]

    other = await ducklm("memory", "remember", "The weir is slippery.", "--task", task, env=env)
    assert other.code == 0
    unconfirmed = await ducklm("memory", "forget", "--scope", "task", "--task", task, "--confirm", "yes", env=env)
    assert unconfirmed.code == 1 and f"task:{task}" in unconfirmed.stderr
    confirmed = await ducklm("memory", "forget", "--scope", "task", "--task", task, "--confirm", f"task:{task}", env=env)
    assert confirmed.code == 0 and "forgot 1 memory" in confirmed.stdout
    # The promoted memory is long-term now, so forgetting the task's scope left it alone.
    assert (await ducklm("memory", "forget", memory_id, env=env)).code == 0


async def test_interactive_chat_asks_for_the_approval_in_the_terminal(scripted: ScriptedStack) -> None:
    scripted.script([write("pty.txt", "typed yes"), {"action": "finish", "message": "Done writing pty.txt."}])
    terminal = await Terminal.spawn(
        [str(DUCKLM), "chat", "--by", "pty-user"], env=scripted.client_env(), cwd=repo_root()
    )
    try:
        await terminal.expect(r"you> ")
        terminal.type("Please write pty.txt\n")
        await terminal.expect(r"\[tool\] write_file")
        await terminal.expect(r"DuckLM wants to run write_file .*pty\.txt.*\n.*Allow it\? \[y/N\] ")
        assert not (scripted.workspace / "pty.txt").exists()
        terminal.type("y\n")
        await terminal.expect(r"approved; continuing")
        await terminal.expect(r"duck> Done writing pty\.txt\.")
        await terminal.expect(r"you> ")
        terminal.type("/quit\n")
        assert await terminal.wait() == 0
    finally:
        terminal.close()
    assert (scripted.workspace / "pty.txt").read_text() == "typed yes"
    async with connect(scripted.stack) as client:
        decided = await client.list_approvals(state="used") + await client.list_approvals(state="approved")
    assert "human via cli" in [approval.decided_by for approval in decided if approval.tool == "write_file"]


async def test_answering_no_on_stdin_denies(scripted: ScriptedStack) -> None:
    scripted.script(
        [write("refused.txt", "no"), {"action": "finish", "message": "Fine, I did not write it."}]
    )
    finished = await ducklm(
        "chat", "write refused.txt", "--by", "stdin-user", env=scripted.client_env(), stdin="n\n"
    )
    assert finished.code == 0, finished.stderr
    assert "Allow it? [y/N]" in finished.stdout
    assert "denied; continuing" in finished.stderr
    assert "duck> Fine, I did not write it." in finished.stdout
    assert not (scripted.workspace / "refused.txt").exists()


async def test_a_turn_left_waiting_is_approved_with_ducklm_approve(scripted: ScriptedStack) -> None:
    env = scripted.client_env()
    scripted.script([write("later.txt", "approved later"), {"action": "finish", "message": "Written."}])
    # No answer (stdin closes): the task is left waiting, and the CLI says how to decide.
    finished = await ducklm("chat", "write later.txt", env=env, stdin="")
    assert finished.code == 3, finished.stdout + finished.stderr
    assert "ducklm approve" in finished.stderr
    listed = await ducklm("approvals", "--json", env=env)
    waiting = [item for item in json.loads(listed.stdout) if item["arguments"].get("path") == "later.txt"]
    assert len(waiting) == 1 and waiting[0]["state"] == "pending"
    approved = await ducklm("approve", waiting[0]["id"], "--by", "ops", env=env)
    assert approved.code == 0, approved.stderr
    async with connect(scripted.stack) as client:
        assert await wait_until_rest(client, waiting[0]["task_id"]) is TaskStatus.COMPLETED
    assert (scripted.workspace / "later.txt").read_text() == "approved later"
    events = await ducklm("events", waiting[0]["task_id"], env=env)
    assert "approval_decided" in events.stdout and "approved" in events.stdout

    scripted.script([write("never.txt", "x"), {"action": "finish", "message": "Not written."}])
    await ducklm("chat", "write never.txt", env=env, stdin="")
    listed = json.loads((await ducklm("approvals", "--json", env=env)).stdout)
    approval = next(item for item in listed if item["arguments"].get("path") == "never.txt")
    denied = await ducklm("deny", approval["id"], "--reason", "no thanks", env=env)
    assert denied.code == 0 and "denied" in denied.stdout
    async with connect(scripted.stack) as client:
        assert await wait_until_rest(client, approval["task_id"]) is TaskStatus.COMPLETED
    assert not (scripted.workspace / "never.txt").exists()


async def test_skill_commands(scripted: ScriptedStack, tmp_path: Path) -> None:
    env = scripted.client_env()
    listed = await ducklm("skills", "list", env=env)
    assert listed.code == 0 and "analyze-project" in listed.stdout
    valid = await ducklm("skills", "validate", str(repo_root() / "skills" / "analyze-project"), env=env)
    assert valid.code == 0 and "valid" in valid.stdout
    bad = tmp_path / "wrong-folder" / "SKILL.md"
    bad.parent.mkdir()
    bad.write_text("---\nname: other-name\ndescription: x\n---\nbody\n")
    # Lenient by default: a name that differs from its folder is a warning; --strict makes it a problem.
    lenient = await ducklm("skills", "validate", str(bad), env=env)
    assert lenient.code == 0 and "warning" in lenient.stdout and "name" in lenient.stdout
    invalid = await ducklm("skills", "validate", "--strict", str(bad), env=env)
    assert invalid.code == 1
    assert "problem" in invalid.stdout and "name" in invalid.stdout

    skill_md = textwrap.dedent("""\
        ---
        name: greet-politely
        description: Greets the user politely. Use when the user says hello.
        ---
        Say hello back, politely.
        """)
    async with grpc.aio.insecure_channel(scripted.stack.address("skills")) as channel:
        proposal = await skills_pb2_grpc.SkillsServiceStub(channel).ProposeSkill(
            skills_pb2.ProposeSkillRequest(skill_md=skill_md, rationale="seen in tests")
        )
    proposals = await ducklm("skills", "proposals", "--state", "pending", env=env)
    assert proposal.id in proposals.stdout
    promoted = await ducklm("skills", "promote", proposal.id, "--by", "reviewer", env=env)
    assert promoted.code == 0, promoted.stderr
    assert (scripted.skills_dir / "greet-politely" / "SKILL.md").is_file()
    for _ in range(50):  # the registry rescans the folder at most every half second
        if "greet-politely" in (await ducklm("skills", "list", env=env)).stdout:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the promoted skill never showed up in `ducklm skills list`")
    again = await ducklm("skills", "promote", proposal.id, env=env)
    assert again.code == 1 and "FAILED_PRECONDITION" in again.stderr


async def test_errors_are_one_clear_line_and_a_nonzero_exit(scripted: ScriptedStack) -> None:
    missing = await ducklm("events", "no-such-task", env=scripted.client_env())
    assert missing.code == 1
    assert missing.stderr.startswith("ducklm: no task id starts with 'no-such-task'")
    assert "Traceback" not in missing.stderr
    nowhere = await ducklm("--runtime", "127.0.0.1:9", "tasks", env=scripted.client_env())
    assert nowhere.code == 1 and "Is the runtime service running at 127.0.0.1:9" in nowhere.stderr


async def test_health_reports_every_service(scripted: ScriptedStack) -> None:
    healthy = await ducklm("health", env=scripted.client_env())
    assert healthy.code == 0, healthy.stdout
    assert [line.split()[-1] for line in healthy.stdout.splitlines()] == ["serving"] * 4
