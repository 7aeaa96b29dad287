"""Opens a service's SQLite database through aiosqlite, in WAL mode, and applies its schema.

Each service owns one database file and one access-layer module that uses this helper.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

__all__ = ["open_database"]


async def open_database(path: Path | str, schema: str) -> aiosqlite.Connection:
    """Opens (creating if needed) the database at `path`, turns on WAL, foreign keys and a busy
    timeout, and runs `schema` (idempotent `CREATE ... IF NOT EXISTS` statements)."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(str(path))
    db.row_factory = aiosqlite.Row
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA foreign_keys=ON")
    await db.execute("PRAGMA busy_timeout=5000")
    await db.executescript(schema)
    await db.commit()
    return db
