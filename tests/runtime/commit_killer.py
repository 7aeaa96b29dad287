"""`python -m tests.runtime.commit_killer N COUNT_FILE`: the runtime exactly as
`python -m services.runtime` runs it, except that it SIGKILLs itself just before its Nth SQLite
commit (N = 0: never), so a test can crash it at every commit point of a turn. Each commit's
number is written to COUNT_FILE first, so a run with N = 0 tells how many commit points there are.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import aiosqlite

from services.runtime.__main__ import main


def install(kill_at: int, count_file: str) -> None:
    original = aiosqlite.Connection.commit
    count = 0

    async def commit(self: aiosqlite.Connection) -> Any:
        nonlocal count
        count += 1
        # Blocking on purpose: the count must be on disk before a kill can land.
        with open(count_file, "w") as out:  # noqa: ASYNC230
            out.write(str(count))
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return await original(self)

    aiosqlite.Connection.commit = commit  # type: ignore[method-assign]


if __name__ == "__main__":
    install(int(sys.argv[1]), sys.argv[2])
    main()
