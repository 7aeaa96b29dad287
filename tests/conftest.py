"""Fixtures shared by the whole suite.

`stack` starts the real DuckLM stack once per test session — llama-server built from source
with the real SmolLM2-135M model, every gRPC service and the gateway as separate processes on
free ports — exactly as `make run` does. Per-service fixtures live in tests/<service>/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from deploy.stack import LocalStack, StackPorts


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    running = LocalStack(data_dir=data_dir, ports=StackPorts.free(), log_dir=data_dir / "logs")
    await running.start(timeout=180.0)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def gateway(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the running stack's gateway."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=300.0) as client:
        yield client


@pytest.fixture(scope="session")
def runtime_database(stack: LocalStack) -> Path:
    return stack.data_dir / "runtime.db"
