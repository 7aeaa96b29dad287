"""Fixtures for the storage tests: one real PostgreSQL server for the session, a fresh database
per test, and each store opened on both backends (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.runtime.pg_store import PostgresTaskStore
from services.runtime.storage import TaskStorage
from services.runtime.store import TaskStore
from services.tools.approval_storage import ApprovalStorage
from services.tools.pg_store import PostgresApprovalStore
from services.tools.store import ApprovalStore
from tests.storage.postgres_server import PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop("immediate")
        finally:
            server.remove()


@pytest.fixture
def postgres_dsn(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """The DSN of a new, empty database of its own for this test."""
    return postgres.create_database(request.node.name)


@pytest.fixture(params=["sqlite", "postgres"])
async def task_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TaskStorage]:
    store: TaskStorage
    if request.param == "sqlite":
        store = await TaskStore.open(tmp_path / "runtime.db")
    else:
        store = await PostgresTaskStore.open(request.getfixturevalue("postgres_dsn"))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def approval_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ApprovalStorage]:
    store: ApprovalStorage
    if request.param == "sqlite":
        store = await ApprovalStore.open(tmp_path / "tools.db")
    else:
        store = await PostgresApprovalStore.open(request.getfixturevalue("postgres_dsn"))
    try:
        yield store
    finally:
        await store.close()
