"""`.env.example` is generated from the settings models and lists every DUCKLM_* variable the
code reads; `.env` fills in what the environment does not set."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from deploy.env_example import render
from services.common.config import repo_root
from tests.doctor.conftest import clean_environment

_VARIABLE = re.compile(r"\bDUCKLM_[A-Z0-9_]+")
_SCANNED = ("services", "deploy", "scripts", "config", "clients/python/src", "Makefile")


def test_the_committed_file_is_what_the_settings_models_generate() -> None:
    committed = (repo_root() / ".env.example").read_text(encoding="utf-8")
    assert committed == render(), "stale .env.example: run `make env-example`"


def test_every_variable_the_code_reads_is_listed() -> None:
    listed = set(re.findall(r"^# (DUCKLM_[A-Z0-9_]+)=", (repo_root() / ".env.example").read_text(), re.MULTILINE))
    used: set[str] = set()
    for top in _SCANNED:
        root = repo_root() / top
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".sh", ".yaml", ".yml", ".md", "")]
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            # A name ending in "_" is a prefix being assembled (f"DUCKLM_{service}_ADDRESS").
            used.update(name for name in _VARIABLE.findall(text) if not name.endswith("_"))
    assert len(used) > 30, "the scan found too few variables to be looking in the right place"
    assert used - listed == set(), "add these to deploy/env_example.py or a settings model, then `make env-example`"


async def test_a_dot_env_file_fills_in_settings_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DUCKLM_TOOLS_MAX_LIST_ENTRIES=7\nDUCKLM_TOOLS_APPROVAL_TTL_SECONDS=9\n")
    env = clean_environment(tmp_path / "data", DUCKLM_ENV_FILE=str(env_file), DUCKLM_TOOLS_APPROVAL_TTL_SECONDS="5")
    script = (
        "from services.common.config import load_settings\n"
        "from services.tools.config import Settings\n"
        "s = load_settings(Settings, 'tools')\n"
        "print(s.max_list_entries, s.approval_ttl_seconds)\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, env=env, cwd=repo_root(), stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    assert process.returncode == 0
    assert stdout.decode().split() == ["7", "5"]
