"""`python -m services.skills` serves; `python -m services.skills validate PATH...` checks skills."""

from __future__ import annotations

import asyncio
import sys

from services.common.config import load_settings
from services.common.logs import configure_logging
from services.common.server import serve
from services.skills.cli import validate_main
from services.skills.config import Settings
from services.skills.server import create_server


def main(argv: list[str]) -> int:
    if argv[:1] == ["validate"]:
        return validate_main(argv[1:])
    if argv:
        print("usage: python -m services.skills [validate PATH...]", file=sys.stderr)
        return 2
    configure_logging("skills")
    asyncio.run(serve(lambda: create_server(load_settings(Settings, "skills")), name="skills"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
