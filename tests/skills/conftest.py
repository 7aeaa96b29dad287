"""Fixtures for the skills service tests: a skills folder in tmp_path seeded from the corpus, the
real server started in-process on port 0, and a stub talking to it over a real channel."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from ducklm.skills.v1 import skills_pb2_grpc

from services.common.server import GrpcServer
from services.skills.config import Settings
from services.skills.server import create_server

CORPUS = Path(__file__).parent / "corpus"
# The corpus skills every test's skills folder starts with.
SEEDED = ("minimal", "with-resources", "full-fields")


@dataclass
class SkillsService:
    settings: Settings
    server: GrpcServer
    stub: skills_pb2_grpc.SkillsServiceAsyncStub


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[SkillsService]:
    """The real skills server on `settings`, and a stub over a real channel; stopped on exit."""
    server = await create_server(settings)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            yield SkillsService(settings, server, skills_pb2_grpc.SkillsServiceStub(channel))
    finally:
        await server.stop(0)


@pytest.fixture
def skills_settings(tmp_path: Path) -> Settings:
    skills_dir = tmp_path / "skills"
    skills_dir.mkdir()
    for name in SEEDED:
        shutil.copytree(CORPUS / "valid" / name, skills_dir / name)
    return Settings(
        address="127.0.0.1:0",
        skills_dir=skills_dir,
        database=tmp_path / "data" / "skills.db",
        proposals_dir=tmp_path / "data" / "proposals",
        # Look at the disk on every request; the throttle has its own test.
        rescan_interval=0,
    )


@pytest.fixture
async def skills_service(skills_settings: Settings) -> AsyncIterator[SkillsService]:
    async with running(skills_settings) as service:
        yield service


@pytest.fixture
def start_skills() -> Callable[[Settings], Any]:
    """`async with start_skills(settings) as service:` for tests that restart or reconfigure."""
    return running


@pytest.fixture
def rpc_error() -> Callable[[Awaitable[Any], grpc.StatusCode], Awaitable[grpc.aio.AioRpcError]]:
    """`await rpc_error(stub.X(...), grpc.StatusCode.Y)` awaits a call that must fail with Y."""

    async def expect(call: Awaitable[Any], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == code, info.value.details()
        return info.value

    return expect


def skill_md(name: str, description: str = "A skill written by a test.", body: str = "1. Do it.\n") -> str:
    return f"---\nname: {name}\ndescription: {description}\n---\n\n{body}"


@pytest.fixture
def skill_text() -> Callable[..., str]:
    """`skill_text(name, description=..., body=...)`: a valid SKILL.md text."""
    return skill_md


@pytest.fixture
def write_skill() -> Callable[..., Path]:
    """`write_skill(skills_dir, name, description=..., body=...)` writes a valid skill folder."""

    def write(
        skills_dir: Path,
        name: str,
        description: str = "A skill written by a test.",
        body: str = "1. Do it.\n",
    ) -> Path:
        folder = skills_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "SKILL.md").write_text(skill_md(name, description, body))
        return folder

    return write
