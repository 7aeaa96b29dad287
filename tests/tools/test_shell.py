"""run_command end to end: no process outlives its command, the environment is minimal, git
cannot reach a repository above the workspace, output is capped and reported, text is safe."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from services.tools.shell import decode_output

from .support import StartTools, ToolsClient, write_policy

# Test-only programs on top of the shipped policy (never in config/tools.yaml).
EXTRA = {"sh": {"allowed_options": ["-c VALUE"]}, "sleep": {"read_only": True}, "env": {"read_only": True}}


async def start(start_tools: StartTools, tmp_path: Path, **settings: object) -> ToolsClient:
    return await start_tools(policy_file=write_policy(tmp_path / "policy.yaml", EXTRA), **settings)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def running(marker: str) -> list[int]:
    """Host processes whose command line holds `marker` (a sandboxed pid means nothing here)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline and alive(int(name)):
                found.append(int(name))
    return found


def wait_gone(marker: str, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not running(marker):
            return True
        time.sleep(0.05)
    return False


async def test_timeout_kills_the_whole_process_group(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start(start_tools, tmp_path)
    started = time.monotonic()
    reply = await client.execute_approved(
        "run_command",
        {"argv": ["sh", "-c", "sleep 61.25 & sleep 60"], "timeout_seconds": 1},
    )
    assert (reply.code, reply.reason) == ("DEADLINE_EXCEEDED", "COMMAND_TIMEOUT")
    assert time.monotonic() - started < 10
    assert wait_gone("sleep 61.25"), "the background child outlived the timeout"


async def test_children_do_not_outlive_a_finished_command(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start(start_tools, tmp_path)
    started = time.monotonic()
    reply = await client.execute_approved("run_command", {"argv": ["sh", "-c", "sleep 62.25 & echo $!"]})
    assert reply.ok and reply.result["exit_code"] == 0
    assert time.monotonic() - started < 10  # not held until the timeout by the child's open pipe
    assert wait_gone("sleep 62.25")


async def test_a_process_that_leaves_the_group_cannot_hold_the_call(
    start_tools: StartTools, tmp_path: Path
) -> None:
    client = await start(start_tools, tmp_path)
    script = 'setsid sh -c "exec sleep 33.25" & sleep 0.2'
    started = time.monotonic()
    reply = await client.execute_approved("run_command", {"argv": ["sh", "-c", script], "timeout_seconds": 1})
    try:
        # setsid leaves the process group and keeps the pipes open, but not the sandbox's PID
        # namespace, which ends with the command: the call ends and nothing is left behind.
        assert reply.code in ("OK", "DEADLINE_EXCEEDED"), reply
        assert time.monotonic() - started < 8
        assert wait_gone("sleep 33.25"), "a process that left the group outlived the sandbox"
    finally:
        for pid in running("sleep 33.25"):
            os.kill(pid, signal.SIGKILL)


async def test_environment_is_minimal(
    start_tools: StartTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUCKLM_TEST_SECRET_TOKEN", "hunter2")
    client = await start(start_tools, tmp_path)
    reply = await client.execute("run_command", {"argv": ["env"]})
    root = client.workspace.resolve()
    assert sorted(reply.result["stdout"].splitlines()) == sorted(
        [
            "PATH=/usr/bin:/bin",
            f"HOME={root}",
            "LANG=C.UTF-8",
            f"GIT_CEILING_DIRECTORIES={root.parent}",
            # Set by the sandbox as it enters the working directory.
            f"PWD={root}",
        ]
    )


async def test_git_works_in_a_workspace_repository(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start(start_tools, tmp_path)
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q"], cwd=client.workspace, check=True)
    reply = await client.execute("run_command", {"argv": ["git", "status", "--porcelain"]})
    assert reply.ok and reply.result["exit_code"] == 0, reply


async def test_git_does_not_find_a_repository_above_the_workspace(
    start_tools: StartTools, tmp_path: Path
) -> None:
    # The folder holding the workspace is a repository.
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q"], cwd=tmp_path, check=True)
    client = await start(start_tools, tmp_path)
    reply = await client.execute("run_command", {"argv": ["git", "status"]})
    assert reply.result["exit_code"] == 128
    assert "not a git repository" in reply.result["stderr"]


async def test_endless_output_is_capped_and_reported(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start(start_tools, tmp_path, max_output_bytes=10_000)
    reply = await client.execute_approved(
        "run_command", {"argv": ["sh", "-c", "yes | head -c 5000000; echo done >&2"]}
    )
    assert reply.ok and reply.truncated
    result = reply.result
    assert (result["exit_code"], result["stdout_truncated"], result["stderr_truncated"]) == (0, True, False)
    assert result["stdout"] == "y\n" * 5000
    assert result["stderr"] == "done\n"


async def test_exit_codes_and_stderr_are_reported(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start(start_tools, tmp_path)
    reply = await client.execute("run_command", {"argv": ["ls", "missing"]})
    assert reply.ok and reply.result["exit_code"] == 2
    assert "No such file or directory" in reply.result["stderr"]
    killed = await client.execute_approved("run_command", {"argv": ["sh", "-c", "kill -9 $$"]})
    # Through the sandbox a signal death reads as a shell reports it: 128 + the signal.
    assert killed.result["exit_code"] == 128 + 9


async def test_read_only_programs_run_without_approval_and_others_wait(
    start_tools: StartTools, tmp_path: Path
) -> None:
    client = await start(start_tools, tmp_path)
    assert (await client.execute("run_command", {"argv": ["sleep", "0"]})).ok
    assert (await client.execute("run_command", {"argv": ["git", "log", "-1"]})).ok
    gated = await client.execute("run_command", {"argv": ["git", "add", "."]})
    assert (gated.code, gated.reason) == ("APPROVAL_REQUIRED", "APPROVAL_REQUIRED")
    assert (await client.execute("run_command", {"argv": ["touch", "x"]})).reason == "APPROVAL_REQUIRED"


async def test_prepended_arguments_are_reported(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start(start_tools, tmp_path)
    reply = await client.execute("run_command", {"argv": ["git", "diff", "--stat"]})
    assert reply.result["argv"] == ["git", "diff", "--no-ext-diff", "--no-textconv", "--stat"]


def test_decode_output_drops_only_a_cut_character() -> None:
    euro = "€".encode()
    assert decode_output(b"ok" + euro[:2], cut=True) == ("ok", False)
    assert decode_output(b"ok" + euro, cut=True) == ("ok€", False)
    assert decode_output(b"ok" + euro[:2], cut=False) == ("ok\ufffd", True)
    assert decode_output(b"\xff\xfe", cut=False) == ("\ufffd\ufffd", True)
    assert decode_output(b"", cut=True) == ("", False)
