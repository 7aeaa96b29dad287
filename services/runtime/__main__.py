"""`python -m services.runtime`: serve the runtime with settings from DUCKLM_RUNTIME_*."""

import asyncio

from services.common.config import load_settings
from services.common.logs import configure_logging
from services.common.server import serve
from services.runtime.config import Settings
from services.runtime.server import create_server


def main() -> None:
    configure_logging("runtime")
    settings = load_settings(Settings, "runtime")
    asyncio.run(serve(lambda: create_server(settings), name="runtime"))


if __name__ == "__main__":
    main()
