"""The command sandbox with real bubblewrap: the check-then-exec link race it closes, protected
paths kept read-only under an approval, the limits it sets, and how the service says when the
sandbox is off or cannot be created (never a silent unsandboxed run)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest
from ducklm.tools.v1 import tools_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.tools import sandbox as sandbox_module
from services.tools.commands import CommandChecker
from services.tools.files import FileLimits, FileTools
from services.tools.policy import load_policy
from services.tools.sandbox import Launch, Sandbox, SandboxLimits
from services.tools.server import SANDBOX_HEALTH_NAME
from services.tools.shell import run_plan
from services.tools.workspace import Workspace

from .support import DEFAULT_POLICY, SECRET, StartTools, ToolsClient, write_policy

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
LIMITS = SandboxLimits(
    cpu_seconds=5, memory_bytes=1 << 31, file_bytes=1 << 20, processes=32, tmp_bytes=1 << 24
)


def _parts(root: Path) -> tuple[CommandChecker, Sandbox]:
    policy = load_policy(DEFAULT_POLICY)
    files = FileTools(Workspace(root), FileLimits(1 << 20, 1 << 20, 100, 1000), policy.protected_paths)
    return CommandChecker(policy, files), Sandbox(files, policy, LIMITS, 10_000)


async def _health(client: ToolsClient) -> int:
    stub = health_pb2_grpc.HealthStub(client.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=SANDBOX_HEALTH_NAME))
    return int(reply.status)


async def test_a_link_swapped_in_after_the_check_points_at_nothing(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "f").write_text("inside\n")
    checker, sandbox = _parts(root)
    # The check sees a plain file ...
    plan = await asyncio.to_thread(checker.plan, ["cat", "f"])
    # ... then, before the program opens it, the file becomes a link to the secret.
    (root / "f").unlink()
    os.symlink(outside / "secret.txt", root / "f")

    unsandboxed = await run_plan(plan, ENV, 10, 4096)
    assert SECRET in unsandboxed.stdout, "without the sandbox the race leaks: the test shows it"

    launch = sandbox.launch(writable=False, cwd=plan.cwd)
    try:
        confined = await run_plan(plan, ENV, 10, 4096, prefix=launch.prefix, pass_fds=launch.pass_fds)
    finally:
        launch.close()
    assert SECRET not in confined.stdout + confined.stderr
    assert confined.exit_code != 0 and "No such file or directory" in confined.stderr


async def test_an_approved_write_through_a_swapped_link_changes_nothing_outside(
    tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "a.txt").write_text("new\n")
    (root / "f").write_text("old\n")
    checker, sandbox = _parts(root)
    plan = await asyncio.to_thread(checker.plan, ["cp", "a.txt", "f"])
    (root / "f").unlink()
    os.symlink(outside / "secret.txt", root / "f")
    launch = await asyncio.to_thread(sandbox.launch, writable=True, cwd=plan.cwd)
    try:
        done = await run_plan(plan, ENV, 10, 4096, prefix=launch.prefix, pass_fds=launch.pass_fds)
    finally:
        launch.close()
    assert done.exit_code != 0, done
    assert (outside / "secret.txt").read_text() == SECRET
    assert sorted(os.listdir(outside)) == ["secret.txt"]


async def test_racing_link_flips_never_leak_through_the_service(
    start_tools: StartTools, outside: Path
) -> None:
    client = await start_tools()
    root = client.workspace.resolve()
    (root / "f").write_text("inside\n")
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            os.symlink(outside / "secret.txt", root / "f.link")
            os.replace(root / "f.link", root / "f")
            (root / "f.file").write_text("inside\n")
            os.replace(root / "f.file", root / "f")

    flipper = threading.Thread(target=flip)
    flipper.start()
    outcomes = set()
    try:
        for _ in range(40):
            reply = await client.execute("run_command", {"argv": ["cat", "f"]})
            assert SECRET not in repr(reply)
            if reply.ok:
                outcomes.add("inside" if reply.result["stdout"] == "inside\n" else "missing")
            else:
                outcomes.add(reply.reason)
    finally:
        stop.set()
        flipper.join()
    assert outcomes <= {"inside", "missing", "OUTSIDE_WORKSPACE", "PATH_CHANGED"}, outcomes


async def test_protected_paths_stay_read_only_under_an_approval(tmp_path: Path) -> None:
    root = tmp_path / "workspace"
    (root / "repo/.git/hooks").mkdir(parents=True)
    (root / "repo/.git/config").write_text("[core]\n")
    (root / "repo/.git/objects").mkdir()
    _, sandbox = _parts(root)
    script = (
        "echo x >> repo/.git/config; echo x > repo/.git/hooks/pre-commit; echo x > repo/.git/objects/o; "
        "echo x > made.txt; ls repo/.git/objects"
    )
    for writes_protected, objects in ((False, ""), (True, "o\n")):
        launch = await asyncio.to_thread(
            sandbox.launch, writable=True, cwd=str(root), writes_protected=writes_protected
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.prefix,
                "/bin/sh",
                "-c",
                script,
                pass_fds=launch.pass_fds,
                env=ENV,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            stdout, stderr = await process.communicate()
        finally:
            launch.close()
        assert stdout.decode() == objects
        assert stderr.decode().count("Read-only file system") == (2 if writes_protected else 3)
        assert (root / "repo/.git/config").read_text() == "[core]\n"
        assert not (root / "repo/.git/hooks/pre-commit").exists()
        assert (root / "made.txt").read_text() == "x\n"


async def test_a_protected_name_that_is_a_link_protects_what_it_leads_to(tmp_path: Path) -> None:
    root = tmp_path / "workspace"
    (root / "store/hooks").mkdir(parents=True)
    os.symlink("store", root / ".git")
    _, sandbox = _parts(root)
    launch = await asyncio.to_thread(sandbox.launch, writable=True, cwd=str(root))
    try:
        process = await asyncio.create_subprocess_exec(
            *launch.prefix,
            "/bin/sh",
            "-c",
            "echo x > .git/hooks/pre-commit; echo x > store/config; echo x > made.txt",
            pass_fds=launch.pass_fds,
            env=ENV,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
    finally:
        launch.close()
    assert stderr.decode().count("Read-only file system") == 2
    assert os.listdir(root / "store/hooks") == [] and not (root / "store/config").exists()
    assert (root / "made.txt").exists()


async def test_no_descriptor_of_the_host_reaches_the_command(tmp_path: Path) -> None:
    # The protected mounts come from descriptors on the host's (writable) mount; one left open in
    # the sandbox would let a command write through it, around the read-only mount.
    root = tmp_path / "workspace"
    (root / ".git/hooks").mkdir(parents=True)
    (root / "sub/.git").mkdir(parents=True)
    _, sandbox = _parts(root)
    launch = await asyncio.to_thread(sandbox.launch, writable=True, cwd=str(root))
    assert len(launch.pass_fds) == 2
    # bash itself holds fd 10 while it redirects, so that one number cannot be probed this way.
    probed = " ".join(str(fd) for fd in (*launch.pass_fds, 3, 4, 5) if fd != 10)
    script = f"for fd in {probed}; do {{ true >&$fd; }} 2>/dev/null && echo open $fd; done; true"
    try:
        done = await run_plan(
            (await asyncio.to_thread(_parts(root)[0].plan, ["ls"])),
            ENV,
            10,
            4096,
            prefix=[*launch.prefix, "/bin/bash", "-c", script, "--"],
            pass_fds=launch.pass_fds,
        )
    finally:
        launch.close()
    assert (done.exit_code, done.stdout) == (0, ""), done


async def test_a_search_path_folder_outside_usr_is_mounted(start_tools: StartTools, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "hello").write_text("#!/bin/sh\necho hello from $0\n")
    (bin_dir / "hello").chmod(0o755)
    policy = write_policy(
        tmp_path / "policy.yaml", {"hello": {"read_only": True}}, search_path=f"{bin_dir}:/usr/bin:/bin"
    )
    client = await start_tools(policy_file=policy)
    reply = await client.execute("run_command", {"argv": ["hello"]})
    assert reply.result["stdout"] == f"hello from {bin_dir}/hello\n", reply


async def test_limits_are_set_inside(start_tools: StartTools, tmp_path: Path) -> None:
    policy = write_policy(
        tmp_path / "policy.yaml", {"bash": {"read_only": True, "allowed_options": ["-c VALUE"]}}
    )
    client = await start_tools(
        policy_file=policy,
        command_cpu_seconds=7,
        command_memory_bytes=1 << 30,
        command_file_bytes=1 << 20,
        command_processes=33,
    )
    reply = await client.execute(
        "run_command", {"argv": ["bash", "-c", "ulimit -t; ulimit -v; ulimit -f; ulimit -u"]}
    )
    assert reply.result["stdout"].split() == ["7", str((1 << 30) // 1024), str((1 << 20) // 1024), "33"]
    assert reply.result["sandboxed"] is True


async def test_the_catalogue_and_health_say_commands_are_sandboxed(start_tools: StartTools) -> None:
    client = await start_tools()
    listed = await client.tools.ListTools(tools_pb2.ListToolsRequest())
    assert listed.commands_sandboxed
    run = next(tool for tool in listed.tools if tool.name == "run_command")
    assert "run in a sandbox" in run.description
    assert await _health(client) == health_pb2.HealthCheckResponse.SERVING


async def test_turning_the_sandbox_off_is_said_everywhere(start_tools: StartTools) -> None:
    client = await start_tools(sandbox=False)
    listed = await client.tools.ListTools(tools_pb2.ListToolsRequest())
    assert not listed.commands_sandboxed
    run = next(tool for tool in listed.tools if tool.name == "run_command")
    assert "WARNING: the command sandbox is turned off" in run.description
    assert await _health(client) == health_pb2.HealthCheckResponse.NOT_SERVING
    reply = await client.execute("run_command", {"argv": ["pwd"]})
    assert reply.ok and reply.result["sandboxed"] is False


async def test_a_sandbox_that_cannot_be_created_refuses_commands(
    start_tools: StartTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bubblewrap is looked up in the system's program folders only; here they hold nothing.
    monkeypatch.setattr(sandbox_module, "_TOOL_PATH", str(tmp_path / "empty"))
    client = await start_tools()
    reply = await client.execute("run_command", {"argv": ["ls"]})
    assert (reply.code, reply.reason) == ("FAILED_PRECONDITION", "SANDBOX_UNAVAILABLE")
    assert "bwrap is not installed" in reply.details and "never run unsandboxed" in reply.details
    approved = await client.execute_approved("run_command", {"argv": ["touch", "x"]})
    assert approved.reason == "SANDBOX_UNAVAILABLE" and not (client.workspace / "x").exists()
    assert await _health(client) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert (await client.execute("list_dir", {})).ok  # the file tools run in-process, unaffected


async def test_a_bwrap_that_fails_is_named_as_the_cause(tmp_path: Path) -> None:
    root = tmp_path / "workspace"
    root.mkdir()
    _, sandbox = _parts(root)
    sandbox.launch = lambda **_: Launch(["/usr/bin/false", "--"], ())  # type: ignore[method-assign]
    assert await sandbox.probe() == "bwrap exited with 1"
    failure = sandbox.failure(1, "", "bwrap: Creating new namespace failed: Operation not permitted\n")
    assert failure is not None and "Creating new namespace failed" in str(failure)
    assert sandbox.failure(1, "", "cat: x: No such file or directory\n") is None
