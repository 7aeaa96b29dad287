"""Fixtures for the tools service tests: real servers in-process on port 0 and a folder with a
secret beside the workspace."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.tools.config import Settings
from services.tools.server import create_server

from .support import APPROVER_TOKEN, DEFAULT_POLICY, SECRET, StartTools, ToolsClient


@pytest.fixture
async def start_tools(tmp_path: Path) -> AsyncIterator[StartTools]:
    """Starts real tools servers on port 0; every one is stopped when the test ends."""
    running: list[ToolsClient] = []

    async def start(*, clock: Callable[[], float] = time.time, **settings: Any) -> ToolsClient:
        settings.setdefault("workspace_dir", tmp_path / "workspace")
        settings.setdefault("database_path", tmp_path / "tools.db")
        settings.setdefault("policy_file", DEFAULT_POLICY)
        settings.setdefault("approver_token", APPROVER_TOKEN)
        server = await create_server(Settings(address="127.0.0.1:0", **settings), clock=clock)
        client = ToolsClient(
            server, grpc.aio.insecure_channel(server.address), Path(settings["workspace_dir"])
        )
        running.append(client)
        return client

    yield start
    for client in running:
        await client.stop()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the workspace holding a secret no tool may read or change."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET)
    return folder
