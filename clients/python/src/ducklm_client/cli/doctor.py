"""`ducklm doctor`: runs the set-up checks (`python -m deploy.doctor`) from the DuckLM checkout,
with the addresses given on the command line, and returns their exit status (0: every required
check passes)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from ducklm_client.cli.up import find_checkout

__all__ = ["doctor"]


def doctor(arguments: Sequence[str], addresses: Mapping[str, str | None]) -> int:
    """`addresses`: service name -> HOST:PORT from --runtime, --tools, ... (None: not given)."""
    checkout = find_checkout()
    env = dict(os.environ)
    env.update({f"DUCKLM_{name.upper()}_ADDRESS": value for name, value in addresses.items() if value})
    return subprocess.run([sys.executable, "-m", "deploy.doctor", *arguments], check=False, cwd=checkout, env=env).returncode
