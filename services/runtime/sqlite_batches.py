"""One SQLite connection on one thread of its own, that runs whole transactions and commits them
in groups: the runtime store's engine (store.py says what the transactions are).

A caller hands over a transaction as one synchronous function of the connection. Functions
handed over while a batch is being written wait and go together into the next one: each in its
own savepoint (a function that raises leaves nothing behind and fails only its caller), all
under one COMMIT. So a step's events cost one trip to the database thread and, under load,
many tasks share one commit, instead of one trip per statement and one commit per event.

A transaction's `committed` callback runs on the event loop right after its batch commits, in
the order the transactions were written, before any caller resumes, even if its caller was
cancelled meanwhile: in-memory copies of the database stay in step with it. Nothing here knows
what the tables hold, and nothing may block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = ["SqliteBatches"]

T = TypeVar("T")

log = logging.getLogger(__name__)

# As services/common/database.py opens every service's database.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


@dataclass
class _Job(Generic[T]):
    work: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]
    committed: Callable[[T], None] | None


class SqliteBatches:
    """Open with `await SqliteBatches.open(path, schema)`; `await run(work)`; `await close()`."""

    def __init__(self, connection: sqlite3.Connection, thread: ThreadPoolExecutor) -> None:
        self._connection = connection
        self._thread = thread
        self._pending: list[_Job[Any]] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path | str, schema: str) -> SqliteBatches:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runtime-sqlite")

        def connect() -> sqlite3.Connection:
            # Autocommit mode: this class opens and commits every transaction itself.
            connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            for pragma in PRAGMAS:
                connection.execute(pragma)
            connection.executescript(schema)
            return connection

        return cls(await asyncio.get_running_loop().run_in_executor(thread, connect), thread)

    async def run(self, work: Callable[[sqlite3.Connection], T], committed: Callable[[T], None] | None = None) -> T:
        """Runs `work` in a transaction (with others, see the module docstring) and returns what
        it returned once committed; what it raised, with nothing of it written."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # A cancelled caller never reads its outcome: read here, so no error is reported as lost.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._pending.append(_Job(work, future, committed))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_batches(), name="runtime-sqlite-writer")
        # Shielded: a cancelled caller does not cancel a transaction that may already be written.
        return await asyncio.shield(future)

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._connection.close)
        self._thread.shutdown(wait=True)

    async def _write_batches(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                outcomes = await loop.run_in_executor(self._thread, self._write, batch)
                for job, (ok, value) in zip(batch, outcomes, strict=True):
                    if ok and job.committed is not None:
                        try:
                            job.committed(value)
                        except Exception:
                            log.exception("a callback after a commit failed")
                for job, (ok, value) in zip(batch, outcomes, strict=True):
                    if job.future.done():
                        continue
                    if ok:
                        job.future.set_result(value)
                    else:
                        job.future.set_exception(value)
        finally:
            self._writer = None

    def _write(self, batch: list[_Job[Any]]) -> list[tuple[bool, Any]]:
        """On the database thread: every job of the batch, each in a savepoint, one COMMIT."""
        connection = self._connection
        outcomes: list[tuple[bool, Any]] = []
        changes = connection.total_changes
        try:
            connection.execute("BEGIN IMMEDIATE")
            for job in batch:
                connection.execute("SAVEPOINT job")
                try:
                    value = job.work(connection)
                except BaseException as exc:  # noqa: BLE001 - handed to the job's caller
                    connection.execute("ROLLBACK TO job")
                    connection.execute("RELEASE job")
                    outcomes.append((False, exc))
                else:
                    connection.execute("RELEASE job")
                    outcomes.append((True, value))
            if connection.total_changes != changes:
                self._commit(connection)
            else:
                connection.execute("COMMIT")  # only read: nothing to make durable
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            return [(False, exc)] * len(batch)
        return outcomes

    @staticmethod
    def _commit(connection: sqlite3.Connection) -> None:
        # The commit of a batch that wrote, in one method, so a test can crash the process just
        # before it (tests/runtime/commit_killer.py).
        connection.execute("COMMIT")
