"""A channel to several runtime replicas (a list of addresses) spreads its calls over all of
them and keeps working while one is down: real runtimes in-process on port 0, real gRPC."""

from __future__ import annotations

from pathlib import Path

from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.common.channels import open_channel
from services.runtime.config import Settings
from services.runtime.server import create_server
from services.runtime.store import TaskStore
from tests.runtime.conftest import write_models_file
from tests.scripted_model import ScriptedModel


async def test_calls_are_spread_over_every_listed_replica(tmp_path: Path) -> None:
    model = ScriptedModel()
    await model.start()
    models_file = write_models_file(tmp_path / "models.yaml", model.endpoint)
    # Each replica on a database of its own, so the calls each one served can be counted.
    servers = [await create_server(Settings(address="127.0.0.1:0", database=tmp_path / f"r{i}.db",
                                            models_file=models_file, standalone=True)) for i in range(2)]
    try:
        target = "ipv4:" + ",".join(server.address for server in servers)
        channel = open_channel(target, idempotent_services=["ducklm.runtime.v1.RuntimeService/GetTask"])
        async with channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            for _ in range(6):
                await stub.Chat(runtime_pb2.ChatRequest(message="hi"), timeout=30)
            await servers[1].stop(grace=0)
            for _ in range(3):
                await stub.Chat(runtime_pb2.ChatRequest(message="still served"), timeout=30)
    finally:
        await servers[0].stop(grace=1.0)
        await model.stop()
    counts = []
    for i in range(2):
        store = await TaskStore.open(tmp_path / f"r{i}.db")
        counts.append(len(await store.list_tasks(0, 100)))
        await store.close()
    assert sum(counts) == 9 and min(counts) >= 2, counts
