"""Fixtures for the client tests: the real stack (tests/conftest.py's `stack`, real model) for
anything that only needs a reply, and a `scripted` stack — every service as its own process, the
runtime pointed at tests/scripted_model.py — for flows that need the model to pick a gated tool.

The CLI and other-language clients run as subprocesses; tests await them so that the scripted
model (served on this session's event loop) keeps answering while they run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ducklm_client import AsyncClient, Connection

from deploy.stack import LocalStack, StackPorts
from services.common.config import repo_root
from tests.scripted_model import ScriptedModel

DUCKLM = Path(sys.executable).parent / "ducklm"


@dataclass
class ScriptedStack:
    stack: LocalStack
    model: ScriptedModel

    @property
    def workspace(self) -> Path:
        return self.stack.data_dir / "workspace"

    @property
    def skills_dir(self) -> Path:
        return self.stack.data_dir / "skills"

    def script(self, outputs: Iterable[str | dict[str, Any]]) -> None:
        self.model.outputs.clear()
        self.model.script(outputs)

    def client_env(self) -> dict[str, str]:
        return client_env(self.stack)


def connect(stack: LocalStack) -> AsyncClient:
    """The Python client for `stack`'s services, with its approver credential."""
    return AsyncClient(
        Connection(
            runtime=stack.address("runtime"),
            tools=stack.address("tools"),
            skills=stack.address("skills"),
            memory=stack.address("memory"),
            approver_token=stack.approver_token,
        )
    )


def client_env(stack: LocalStack) -> dict[str, str]:
    """The environment a client process gets: where each service of `stack` listens, and the
    approver credential."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DUCKLM_")}
    for service in ("runtime", "tools", "skills", "memory"):
        env[f"DUCKLM_{service.upper()}_ADDRESS"] = stack.address(service)
    env["PYTHONUNBUFFERED"] = "1"
    # The human's side: clients decide approvals with the stack's approver credential.
    env["DUCKLM_APPROVER_TOKEN"] = stack.approver_token
    return env


@pytest.fixture(scope="session")
async def scripted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ScriptedStack]:
    data_dir = tmp_path_factory.mktemp("scripted-stack")
    model = ScriptedModel()
    await model.start()
    # Chat and embeddings both from the scripted server; no llama-server is started.
    models_file = data_dir / "models.yaml"
    roles = {
        "chat": {"endpoint": model.endpoint, "model": "scripted", "max_tokens": 64},
        "embedding": {"endpoint": model.endpoint, "model": "scripted-embed"},
    }
    models_file.write_text(yaml.safe_dump({"roles": roles}))
    # Promoting a proposal writes a skill folder: give the stack its own copy of skills/.
    shutil.copytree(repo_root() / "skills", data_dir / "skills")
    stack = LocalStack(
        data_dir=data_dir,
        ports=StackPorts.free(),
        log_dir=data_dir / "logs",
        extra_env={
            "DUCKLM_RUNTIME_MODELS_FILE": str(models_file),
            "DUCKLM_RUNTIME_APPROVAL_RETRY_SECONDS": "0.1",
            "DUCKLM_SKILLS_SKILLS_DIR": str(data_dir / "skills"),
        },
        with_gateway=False,
    )
    await stack.start(timeout=120.0)
    try:
        yield ScriptedStack(stack=stack, model=model)
    finally:
        await stack.stop()
        await model.stop()


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


async def run_process(
    argv: list[str],
    *,
    env: Mapping[str, str],
    stdin: str | None = None,
    timeout: float = 180.0,
    cwd: Path | None = None,
) -> Finished:
    """Runs a program to completion without blocking the event loop."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        cwd=cwd or repo_root(),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), timeout
        )
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        raise AssertionError(
            f"{argv} ran past {timeout}s\nstdout: {out.decode()}\nstderr: {err.decode()}"
        ) from None
    return Finished(code=process.returncode or 0, stdout=out.decode(), stderr=err.decode())


async def ducklm(
    *arguments: str, env: Mapping[str, str], stdin: str | None = None, timeout: float = 180.0
) -> Finished:
    """Runs the installed `ducklm` console script."""
    return await run_process([str(DUCKLM), *arguments], env=env, stdin=stdin, timeout=timeout)


NODE_DIR = repo_root() / "clients" / "node"


@pytest.fixture(scope="session")
async def node_modules() -> None:
    """Installs the Node client's packages from the registry (package-lock.json) once."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "the Node client test needs node (>= 18) and npm on PATH"
    packages = NODE_DIR / "node_modules" / "@grpc"
    if (packages / "grpc-js").is_dir() and (packages / "proto-loader").is_dir():
        return
    installed = await run_process(
        [npm, "ci", "--no-audit", "--no-fund"], env=os.environ, cwd=NODE_DIR, timeout=300
    )
    assert installed.code == 0, installed.stderr
