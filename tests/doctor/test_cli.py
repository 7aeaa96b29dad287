"""`ducklm doctor` runs the same checks from the command line and exits with their verdict."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from services.common.config import repo_root
from tests.doctor.conftest import clean_environment

_CHECKLIST_LINE = "  [FAIL] models.yaml: "


async def _ducklm(env: dict[str, str], *arguments: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ducklm_client", *arguments, env=env, cwd=repo_root(), stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode()


async def test_ducklm_doctor_passes_a_good_config_and_prints_json(tmp_path: Path) -> None:
    code, out = await _ducklm(clean_environment(tmp_path / "data"), "doctor", "--only", "config", "--json")
    report = json.loads(out)
    assert report["ok"] is True
    assert {c["name"] for c in report["checks"]} == {"settings", "models.yaml"}
    assert code == 0


async def test_ducklm_doctor_prints_the_failing_line_with_its_fix_and_exits_1(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("roles:\n  chat: {endpoint: e, model: m}\n  embedings: {endpoint: e, model: m}\n")
    code, out = await _ducklm(clean_environment(tmp_path / "data", DUCKLM_RUNTIME_MODELS_FILE=str(models)), "doctor", "--only", "config")
    assert f"{_CHECKLIST_LINE}{models}:3: roles.embedings: unknown role; expected one of chat, reasoning, embedding" in out
    assert "         fix: " in out
    assert "1 required check(s) failed" in out
    assert code == 1


async def test_addresses_given_to_ducklm_reach_the_doctor(tmp_path: Path) -> None:
    code, out = await _ducklm(
        clean_environment(tmp_path / "data"), "--runtime", "127.0.0.1:1", "doctor", "--only", "services", "--json"
    )
    runtime = next(c for c in json.loads(out)["checks"] if c["section"] == "services.runtime")
    assert runtime["detail"].startswith("127.0.0.1:1 does not answer")
    assert code == 1
