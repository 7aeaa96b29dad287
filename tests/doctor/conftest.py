"""Fixtures for the doctor's tests: a stub model server, an environment naming a set-up under
tmp_path, and `run_doctor`, which runs `python -m deploy.doctor --json` as a person would (a
separate process, so the stub keeps serving in this test's event loop)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.config import repo_root
from tests.doctor.stub_model import StubModel


@dataclass(frozen=True)
class DoctorRun:
    code: int
    checks: list[dict[str, Any]]
    stdout: str
    stderr: str

    def find(self, section: str, name: str) -> dict[str, Any]:
        found = [c for c in self.checks if c["section"] == section and c["name"] == name]
        assert found, f"no check {section} / {name} in {[(c['section'], c['name']) for c in self.checks]}"
        return found[0]

    @property
    def failed(self) -> list[tuple[str, str]]:
        return [(c["section"], c["name"]) for c in self.checks if c["status"] == "fail"]


def clean_environment(data_dir: Path, **variables: str) -> dict[str, str]:
    """This process's environment without any DUCKLM_* variable (and no .env file), plus these."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DUCKLM_")}
    env.update({"DUCKLM_DATA_DIR": str(data_dir), "DUCKLM_ENV_FILE": str(data_dir / "no.env"), **variables})
    return env


def write_models(path: Path, roles: dict[str, dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"roles": roles}))
    return path


async def run_doctor(env: dict[str, str], *arguments: str, wrapper: Sequence[str] = ()) -> DoctorRun:
    process = await asyncio.create_subprocess_exec(
        *wrapper, sys.executable, "-m", "deploy.doctor", "--json", *arguments,
        env=env, cwd=repo_root(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    out, err = stdout.decode(), stderr.decode()
    assert process.returncode is not None
    try:
        checks = json.loads(out)["checks"]
    except (ValueError, KeyError):
        raise AssertionError(f"doctor printed no JSON report:\n{out}\n{err}") from None
    return DoctorRun(process.returncode, checks, out, err)


@pytest.fixture
async def stub_model() -> AsyncIterator[StubModel]:
    model = StubModel()
    await model.start()
    try:
        yield model
    finally:
        await model.stop()
