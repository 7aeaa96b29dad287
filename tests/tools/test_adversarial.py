"""Runs the adversarial corpus (adversarial_cases.yaml) against a real tools server.

Each case builds its workspace, makes one call and asserts the precise refusal or safe result.
On top of that, every case asserts the invariants no attack may break: the secret beside the
workspace never appears in a reply, nothing outside the workspace changes, and no `pwned` file
is ever created.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.config import repo_root

from .support import SECRET, Reply, StartTools, write_policy

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "adversarial_cases.yaml").read_text())

GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "setup",
    "GIT_AUTHOR_EMAIL": "setup@localhost",
    "GIT_COMMITTER_NAME": "setup",
    "GIT_COMMITTER_EMAIL": "setup@localhost",
}


def _substitute(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in names.items():
            value = value.replace("{" + key + "}", replacement)
        return re.sub(r"\{big:(\d+)\}", lambda match: "x" * int(match.group(1)), value)
    if isinstance(value, list):
        return [_substitute(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, names) for key, item in value.items()}
    return value


def _place(root: Path, path: str) -> Path:
    return Path(path) if path.startswith("/") else root / path


def _build(step: dict[str, Any], root: Path) -> None:
    """One setup step; paths are relative to the workspace unless absolute."""
    if "file" in step:
        target = _place(root, step["file"])
        target.parent.mkdir(parents=True, exist_ok=True)
        if "hex" in step:
            target.write_bytes(bytes.fromhex(step["hex"]))
        elif "size" in step:
            target.write_bytes(b"x" * step["size"])
        elif "lines" in step:
            target.write_text("".join(f"line {i}\n" for i in range(step["lines"])))
        else:
            target.write_text(step.get("text", ""))
        if "mode" in step:
            target.chmod(int(str(step["mode"]), 8))
    elif "dir" in step:
        _place(root, step["dir"]).mkdir(parents=True, exist_ok=True)
    elif "symlink" in step:
        link = _place(root, step["symlink"])
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(step["to"], link)
    elif "hardlink" in step:
        os.link(_place(root, step["to"]), _place(root, step["hardlink"]))
    elif "fifo" in step:
        os.mkfifo(_place(root, step["fifo"]))
    elif "socket" in step:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(_place(root, step["socket"])))
    elif "device" in step:
        try:
            os.mknod(_place(root, step["device"]), stat.S_IFCHR | 0o600, os.makedev(1, 3))
        except PermissionError:
            # Without the right to make device nodes a FIFO stands in: both are special files.
            os.mkfifo(_place(root, step["device"]))
    elif "raw_name" in step:
        name = os.path.join(os.fsencode(root), bytes.fromhex(step["raw_name"]))
        with open(name, "wb") as handle:
            handle.write(step.get("text", "").encode())
    elif "run" in step:
        subprocess.run(step["run"], cwd=root, env=GIT_ENV, check=True, capture_output=True)
    else:
        raise AssertionError(f"unknown setup step {step}")


def _snapshot(folder: Path) -> dict[str, Any]:
    """Everything observable about a folder tree: names, types, contents, link targets, inodes."""
    seen: dict[str, Any] = {}
    for current, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = os.path.join(current, name)
            info = os.lstat(path)
            entry: dict[str, Any] = {"mode": info.st_mode, "nlink": info.st_nlink, "mtime": info.st_mtime_ns}
            if stat.S_ISLNK(info.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                entry["data"] = Path(path).read_bytes()
            seen[os.path.relpath(path, folder)] = entry
    return seen


def _pwned(*folders: Path) -> list[str]:
    return [
        os.path.join(top, name)
        for folder in folders
        for top, _, names in os.walk(folder)
        for name in names
        if name == "pwned"
    ]


def _subset(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{where}: expected {expected!r}, got {actual!r}"
        )
        for index, (want, got) in enumerate(zip(expected, actual)):
            _subset(want, got, f"{where}[{index}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing from {actual!r}"
            _subset(value, actual[key], f"{where}.{key}")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


def _check(reply: Reply, expect: dict[str, Any]) -> None:
    assert reply.code == expect.get("code", "OK"), f"expected {expect.get('code', 'OK')}, got {reply}"
    if "reason" in expect:
        assert reply.reason == expect["reason"], f"expected reason {expect['reason']}, got {reply}"
    if "details_contains" in expect:
        assert expect["details_contains"] in reply.details, reply.details
    _subset(expect.get("result", {}), reply.result, "result")
    for key, text in expect.get("contains", {}).items():
        assert text in reply.result[key], f"result.{key} lacks {text!r}: {reply.result[key]!r}"
    for key, text in expect.get("not_contains", {}).items():
        assert text not in str(reply.result.get(key, "")), f"result.{key} has {text!r}"
    if expect.get("exit_code_nonzero"):
        assert reply.result["exit_code"] != 0, reply.result
    for key, most in expect.get("max_len", {}).items():
        assert len(reply.result[key]) <= most, f"result.{key} is {len(reply.result[key])} long"
    if "truncated" in expect:
        assert reply.truncated is expect["truncated"]


def test_corpus_is_large_and_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 300
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert {"id", "why", "tool", "args", "expect"} <= set(case), case["id"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
async def test_adversarial_case(
    case: dict[str, Any], start_tools: StartTools, tmp_path: Path, outside: Path
) -> None:
    settings: dict[str, Any] = {}
    if "extra_commands" in case:
        settings["policy_file"] = write_policy(tmp_path / "policy.yaml", case["extra_commands"])
    client = await start_tools(
        max_file_bytes=65536,
        max_read_bytes=8192,
        max_output_bytes=4096,
        command_timeout_seconds=2,
        **settings,
    )
    root = client.workspace.resolve()
    names = {
        "root": str(root),
        "outside": str(outside),
        "data": str(root.parent),
        "repo": str(repo_root()),
        "home": os.path.expanduser("~"),
        "pid": str(os.getpid()),
        "port": str(client.server.port),
    }
    for step in _substitute(case.get("setup", []), names):
        _build(step, root)
    before = _snapshot(outside)
    arguments = _substitute(case["args"], names)
    if case.get("approve"):
        reply = await client.execute_approved(case["tool"], arguments)
    else:
        reply = await client.execute(case["tool"], arguments)

    _check(reply, case["expect"])
    assert SECRET not in repr(reply), "the secret beside the workspace leaked into a reply"
    assert _snapshot(outside) == before, "something outside the workspace changed"
    assert _pwned(root, outside) == [], "an injected command ran"
    for path in case.get("after", {}).get("exists", []):
        assert os.path.lexists(root / path), f"{path} should exist"
    for path in case.get("after", {}).get("absent", []):
        assert not os.path.lexists(root / path), f"{path} should not exist"
    for path, text in case.get("after", {}).get("text", {}).items():
        assert (root / path).read_text() == text
