"""Fixtures for the memory service: fake runtimes (see fakes.py) and memory servers on either
backend, started in-process on port 0 and reached over real gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from ducklm.memory.v1 import memory_pb2_grpc

from services.memory.config import Settings
from services.memory.server import create_server

from .fakes import (
    DisabledEmbeddingService,
    FakeRuntime,
    HashingEmbeddingService,
    MemoryServer,
    StartMemory,
    start_runtime,
)


@pytest.fixture
async def runtime() -> AsyncIterator[FakeRuntime]:
    """A runtime embedding into 64 dimensions with model "fake-hash-64"."""
    started = await start_runtime(HashingEmbeddingService(64, "fake-hash-64"))
    yield started
    await started.server.stop(0)


@pytest.fixture
async def runtime_32() -> AsyncIterator[FakeRuntime]:
    """A runtime whose embedding model gives 32 dimensions ("fake-hash-32")."""
    started = await start_runtime(HashingEmbeddingService(32, "fake-hash-32"))
    yield started
    await started.server.stop(0)


@pytest.fixture
async def disabled_runtime() -> AsyncIterator[FakeRuntime]:
    started = await start_runtime(DisabledEmbeddingService())
    yield started
    await started.server.stop(0)


@pytest.fixture(params=["edge", "qdrant"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test taking this runs on Qdrant Edge and on qdrant-client (in-process mode)."""
    return str(request.param)


@pytest.fixture
async def start_memory(tmp_path: Path) -> AsyncIterator[StartMemory]:
    """Starts memory servers (call it again after stopping one to restart on the same data);
    whatever is still running at the end is stopped."""
    running: list[MemoryServer] = []

    async def start(runtime_address: str, backend: str = "edge", **overrides: Any) -> MemoryServer:
        settings = Settings(
            address="127.0.0.1:0",
            backend="qdrant" if backend == "qdrant" else "edge",
            edge_path=tmp_path / "memory",
            qdrant_url=":memory:" if backend == "qdrant" else "",
            runtime_address=runtime_address,
            embed_timeout_s=5.0,
            **overrides,
        )
        server = await create_server(settings)
        channel = grpc.aio.insecure_channel(server.address)
        started = MemoryServer(server, channel, memory_pb2_grpc.MemoryServiceStub(channel))
        running.append(started)
        return started

    yield start
    for started in running:
        await started.stop()


@pytest.fixture
async def memory(start_memory: StartMemory, runtime: FakeRuntime, backend: str) -> MemoryServer:
    """A memory server on `backend` whose runtime embeds with the 64-d fake."""
    return await start_memory(runtime.address, backend)
