"""A private PostgreSQL server for the tests: a fresh cluster in a temporary folder, on a free
port of 127.0.0.1, run as an unprivileged user (the server refuses to run as root).

The binaries are Debian's (`scripts/install_postgres.sh` installs them when missing): found on
PATH, or under /usr/lib/postgresql/<version>/bin, newest first; `DUCKLM_POSTGRES_BIN` names
another folder. Nothing here is used by the services themselves.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

from services.common.testing import free_port

__all__ = ["PostgresServer", "find_postgres_bin"]

# The user the server runs as when the tests run as root.
UNPRIVILEGED_USER = "nobody"


def find_postgres_bin() -> Path:
    """The folder holding initdb, pg_ctl and postgres."""
    configured = os.environ.get("DUCKLM_POSTGRES_BIN")
    candidates = [Path(configured)] if configured else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise RuntimeError(
        "PostgreSQL's server binaries (initdb, pg_ctl, postgres) are missing: run"
        " scripts/install_postgres.sh (Debian's postgresql package) or set DUCKLM_POSTGRES_BIN"
    )


class PostgresServer:
    """One throwaway cluster. `start()`, then `dsn(database)`; `stop()` removes everything."""

    def __init__(self, *, durable: bool = False) -> None:
        # durable: fsync on (commits survive a crash of the server, not of the machine, with
        # synchronous_commit off), for benchmarks; off for tests, whose cluster lives one session.
        self.durable = durable
        self.bin = find_postgres_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ducklm-postgres-"))
        self.data = self.root / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            entry = pwd.getpwnam(UNPRIVILEGED_USER)
            # The folder is the unprivileged user's own; /tmp above it is open to all.
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._as_user = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups",
                             "--reset-env", "--"]

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as_user, *command], capture_output=True, text=True, check=False,
                                cwd=self.root, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()}")

    def start(self) -> None:
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "ducklm", "--auth=trust",
                      "--encoding=UTF8", "--locale=C", "--no-sync")
        # Listening on TCP only.
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.root}'"
                   " -c synchronous_commit=off -c max_connections=300")
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stops the server (the cluster stays until `remove`). mode "immediate": as a crash."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://ducklm@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its DSN."""
        name = f"{re.sub(r'[^a-z0-9_]', '_', prefix.lower())[:40]}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)
