"""The runtime's health follows its model server: NOT_SERVING while the server is frozen (accepts
connections, never answers), SERVING while it answers at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.config import Settings
from services.runtime.server import create_server
from tests.runtime.conftest import write_models_file
from tests.scripted_model import ScriptedModel
from tests.waits import until


async def health_of(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return int(reply.status)


async def wait_for_status(address: str, status: int) -> bool:
    for _ in range(100):
        if await health_of(address) == status:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_health_follows_a_frozen_model_server(tmp_path: Path, scripted_model: ScriptedModel) -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(3600)

    frozen = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = frozen.sockets[0].getsockname()[1]
    settings = Settings(
        address="127.0.0.1:0", database=tmp_path / "frozen.db", standalone=True, model_probe_seconds=0.2,
        models_file=write_models_file(tmp_path / "frozen.yaml", f"http://127.0.0.1:{port}/v1"),
    )
    server = await create_server(settings)
    try:
        assert await wait_for_status(server.address, health_pb2.HealthCheckResponse.NOT_SERVING)
    finally:
        await server.stop(grace=0.5)
        frozen.close()
    answering = await create_server(settings.model_copy(update={
        "database": tmp_path / "ok.db", "models_file": write_models_file(tmp_path / "ok.yaml", scripted_model.endpoint),
    }))
    try:
        seen = scripted_model.probes

        async def probed() -> bool:
            return scripted_model.probes >= seen + 2

        await until(probed, "two health probes of the answering model server")
        assert await health_of(answering.address) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await answering.stop(grace=0.5)
