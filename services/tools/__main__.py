"""Runs the tools service (with the approvals service) until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio

from services.common.config import load_settings
from services.common.logs import configure_logging
from services.common.server import serve
from services.tools.config import Settings
from services.tools.server import create_server


def main() -> None:
    configure_logging("tools")
    asyncio.run(serve(lambda: create_server(load_settings(Settings, "tools")), name="tools"))


if __name__ == "__main__":
    main()
