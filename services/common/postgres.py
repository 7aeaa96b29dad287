"""Opens a service's PostgreSQL database: a psycopg 3 connection pool, and its versioned
migrations applied at start-up.

Shared by every access layer that can run on PostgreSQL (the runtime's tasks, the tools
service's approvals); each passes its own named list of migrations. It must never hold a
service's queries: those live in the service's own store module.

A database that cannot be reached at start-up is a `DatabaseUnreachable` (a `ConfigError`, so
the service exits with its message: the host and the cause). Losing it later is `Unavailable`
on the call that met it (`unavailable`), never a half-written transaction: every write runs in
one transaction that PostgreSQL rolls back when the connection drops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from services.common.config import ConfigError
from services.common.errors import Unavailable

__all__ = [
    "DATABASE_UNAVAILABLE",
    "DatabaseUnreachable",
    "Migration",
    "Pool",
    "apply_migrations",
    "describe_host",
    "is_postgres_url",
    "open_pool",
    "unavailable",
]

# The reason of the Unavailable a call gets when the database went away under it.
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"

# A pool of connections whose rows are dicts (column name → value).
Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]

# How long start-up waits for a first connection before it names the host and gives up.
CONNECT_TIMEOUT_SECONDS = 10.0

# How long a call waits for a pooled connection before it fails with UNAVAILABLE.
CALL_TIMEOUT_SECONDS = 5.0

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    apply_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


@dataclass(frozen=True)
class Migration:
    """One step of a component's schema: applied once, in version order, in one transaction."""

    version: int
    name: str
    sql: str


class DatabaseUnreachable(ConfigError):
    """The configured PostgreSQL database could not be reached or used at start-up."""


def is_postgres_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def describe_host(dsn: str) -> str:
    """host:port/database of a DSN, without its password (for messages and logs)."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "an unparsable DSN"
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"


async def unavailable(pool: Pool, dsn: str, exc: BaseException) -> Unavailable:
    """The error a call gets when the database went away under it (clients retry later). The
    pool's idle connections are checked first, so the broken ones are dropped now rather than
    handed to the next calls (connections are not checked on every checkout: that would cost a
    round trip each)."""
    with contextlib.suppress(psycopg.Error):
        await pool.check()
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Unavailable(f"the database at {describe_host(dsn)} is unavailable: {cause}", reason=DATABASE_UNAVAILABLE)


async def open_pool(dsn: str, migrations: Sequence[Migration], *, component: str, max_size: int = 10) -> Pool:
    """Connects to `dsn`, applies `component`'s pending migrations and returns an open pool.
    Raises DatabaseUnreachable naming the host and the cause when it cannot."""
    where = describe_host(dsn)
    try:
        # Checked with one plain connection first: the pool itself would retry in the background
        # and only say "timeout", losing the cause (refused, unknown host, bad password).
        probe = await psycopg.AsyncConnection.connect(dsn, connect_timeout=int(CONNECT_TIMEOUT_SECONDS))
        await probe.close()
    except psycopg.Error as exc:
        raise DatabaseUnreachable(f"{component}: cannot reach the database at {where}: {_first_line(exc)}") from None
    pool = Pool(
        dsn,
        connection_class=psycopg.AsyncConnection[DictRow],
        min_size=1,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": True},
        open=False,
        # A call waits this long for a connection while the database is away, then UNAVAILABLE.
        timeout=CALL_TIMEOUT_SECONDS,
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        await apply_migrations(pool, migrations, component=component)
    except (psycopg.Error, TimeoutError) as exc:
        await pool.close()
        raise DatabaseUnreachable(f"{component}: cannot use the database at {where}: {_first_line(exc)}") from None
    return pool


async def apply_migrations(pool: Pool, migrations: Sequence[Migration], *, component: str) -> list[int]:
    """Applies the migrations not yet recorded for `component`, in order, in one transaction
    (all or none). An advisory lock makes replicas starting together apply each exactly once.
    Returns the versions applied now."""
    applied_now: list[int] = []
    async with pool.connection() as conn, conn.transaction():
        # One lock for all components: CREATE TABLE IF NOT EXISTS itself races otherwise.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ducklm.schema_migrations'))")
        await conn.execute(MIGRATIONS_TABLE)
        cursor = await conn.execute("SELECT version FROM schema_migrations WHERE component = %s", (component,))
        done = {int(row["version"]) for row in await cursor.fetchall()}
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name) VALUES (%s, %s, %s)",
                (component, migration.version, migration.name),
            )
            applied_now.append(migration.version)
    return applied_now


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
