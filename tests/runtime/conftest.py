"""Fixtures for runtime tests: a scripted model server and a runtime served in-process on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import yaml
from ducklm.runtime.v1 import runtime_pb2_grpc

from services.common.server import GrpcServer
from services.runtime.config import Settings
from services.runtime.server import create_server
from tests.scripted_model import ScriptedModel


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
async def runtime_stub(runtime_server: GrpcServer) -> AsyncIterator[runtime_pb2_grpc.RuntimeServiceStub]:
    async with grpc.aio.insecure_channel(runtime_server.address) as channel:
        yield runtime_pb2_grpc.RuntimeServiceStub(channel)
