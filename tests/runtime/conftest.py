"""Fixtures for runtime tests: a scripted model server and a runtime served in-process on port 0."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import yaml
from ducklm.runtime.v1 import runtime_pb2_grpc

from services.common.config import repo_root
from services.common.server import GrpcServer
from services.common.testing import free_port
from services.runtime.config import Settings
from services.runtime.server import create_server
from services.skills.config import Settings as SkillsSettings
from services.skills.server import create_server as create_skills
from services.tools.config import Settings as ToolsSettings
from services.tools.server import create_server as create_tools
from tests.scripted_model import ScriptedModel
from tests.tools.support import APPROVER_TOKEN


@pytest.fixture
async def scripted_model() -> AsyncIterator[ScriptedModel]:
    model = ScriptedModel()
    await model.start()
    try:
        yield model
    finally:
        await model.stop()


def write_models_file(path: Path, endpoint: str, *, embedding: bool = True) -> Path:
    roles: dict[str, object] = {"chat": {"endpoint": endpoint, "model": "scripted", "max_tokens": 64}}
    if embedding:
        roles["embedding"] = {"endpoint": endpoint, "model": "scripted-embed"}
    path.write_text(yaml.safe_dump({"roles": roles}))
    return path


@pytest.fixture
def runtime_settings(tmp_path: Path, scripted_model: ScriptedModel) -> Settings:
    return Settings(
        address="127.0.0.1:0",
        database=tmp_path / "runtime.db",
        models_file=write_models_file(tmp_path / "models.yaml", scripted_model.endpoint),
        max_steps=4,
        max_repairs=2,
        standalone=True,
    )


@pytest.fixture
async def runtime_server(runtime_settings: Settings) -> AsyncIterator[GrpcServer]:
    server = await create_server(runtime_settings)
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


@pytest.fixture
async def runtime_stub(runtime_server: GrpcServer) -> AsyncIterator[runtime_pb2_grpc.RuntimeServiceAsyncStub]:
    async with grpc.aio.insecure_channel(runtime_server.address) as channel:
        yield runtime_pb2_grpc.RuntimeServiceStub(channel)


class Peers:
    def __init__(self, tools: GrpcServer, skills: GrpcServer, workspace: Path, memory_address: str) -> None:
        self.tools = tools
        self.skills = skills
        self.workspace = workspace
        self.memory_address = memory_address


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    workspace = tmp_path / "workspace"
    skills_dir = tmp_path / "skills"
    shutil.copytree(repo_root() / "skills", skills_dir)
    tools = await create_tools(
        ToolsSettings(
            address="127.0.0.1:0",
            workspace_dir=workspace,
            database_path=tmp_path / "tools.db",
            approver_token=APPROVER_TOKEN,
        )
    )
    skills = await create_skills(
        SkillsSettings(address="127.0.0.1:0", skills_dir=skills_dir, database=tmp_path / "skills.db",
                       proposals_dir=tmp_path / "proposals", rescan_interval=0)
    )
    try:
        # No memory service runs here: recall reports it unavailable, explicitly.
        yield Peers(tools, skills, workspace, f"127.0.0.1:{free_port()}")
    finally:
        await tools.stop(grace=1.0)
        await skills.stop(grace=1.0)
