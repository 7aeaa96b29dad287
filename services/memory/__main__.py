"""Runs the memory service: `python -m services.memory` (settings from DUCKLM_MEMORY_*)."""

from __future__ import annotations

import asyncio

from services.common.config import load_settings
from services.common.logs import configure_logging
from services.common.server import serve
from services.memory.config import Settings
from services.memory.server import create_server


def main() -> None:
    configure_logging("memory")
    asyncio.run(serve(lambda: create_server(load_settings(Settings, "memory")), name="memory"))


if __name__ == "__main__":
    main()
