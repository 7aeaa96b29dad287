"""The memory service as its own process (`python -m services.memory`): configured from
DUCKLM_MEMORY_* variables, and what it acknowledged survives being killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc
import pytest
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc

from services.common.config import repo_root
from services.common.testing import free_port, wait_for_health

from .fakes import FakeRuntime

Spawn = Callable[[], Coroutine[Any, Any, tuple[asyncio.subprocess.Process, str]]]


@pytest.fixture
async def spawn_memory(tmp_path: Path, runtime: FakeRuntime) -> AsyncIterator[Spawn]:
    processes: list[asyncio.subprocess.Process] = []

    async def spawn() -> tuple[asyncio.subprocess.Process, str]:
        address = f"127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "DUCKLM_MEMORY_ADDRESS": address,
            "DUCKLM_MEMORY_EDGE_PATH": str(tmp_path / "memory"),
            "DUCKLM_MEMORY_RUNTIME_ADDRESS": runtime.address,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.memory", cwd=repo_root(), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        processes.append(process)
        await wait_for_health(address, timeout=30)
        return process, address

    yield spawn
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()


async def test_acknowledged_memories_survive_sigkill(spawn_memory: Spawn) -> None:
    process, address = await spawn_memory()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        stored = await stub.Remember(memory_pb2.RememberRequest(text="the backup runs at 3am", kind="fact"))
    process.kill()
    assert await process.wait() == -signal.SIGKILL

    process, address = await spawn_memory()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        got = await stub.GetMemory(memory_pb2.GetMemoryRequest(memory_id=stored.id))
        found = await stub.Search(memory_pb2.SearchRequest(text="when does the backup run"))
    assert got == stored
    assert [hit.memory.id for hit in found.results] == [stored.id]
    process.send_signal(signal.SIGTERM)
    assert await process.wait() == 0
