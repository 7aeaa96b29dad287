"""`python -m tests.runtime.commit_killer N COUNT_FILE`: the runtime exactly as
`python -m services.runtime` runs it, except that it SIGKILLs itself just before its Nth SQLite
commit (a group commit of the store counts once) (N = 0: never), so a test can crash it at every commit point of a turn. Each commit's
number is written to COUNT_FILE first, so a run with N = 0 tells how many commit points there are.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys

from services.runtime.__main__ import main
from services.runtime.sqlite_batches import SqliteBatches


def install(kill_at: int, count_file: str) -> None:
    original = SqliteBatches._commit
    count = 0

    def commit(connection: sqlite3.Connection) -> None:
        nonlocal count
        count += 1
        # On the database thread, before the commit: the count is on disk before a kill can land.
        with open(count_file, "w") as out:
            out.write(str(count))
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        original(connection)

    SqliteBatches._commit = staticmethod(commit)  # type: ignore[method-assign]


if __name__ == "__main__":
    install(int(sys.argv[1]), sys.argv[2])
    main()
