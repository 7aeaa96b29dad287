"""A models.yaml that does not parse, or names a role or key nobody reads: the doctor, the
runtime service and the launcher each say which file, which line and key, and what was expected,
without a traceback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from services.common.config import repo_root
from tests.doctor.conftest import clean_environment, run_doctor

_UNKNOWN_ROLE = """roles:
  chat:
    endpoint: http://127.0.0.1:9/v1
    model: m
  chatt:
    endpoint: http://127.0.0.1:9/v1
    model: m
"""
_UNKNOWN_KEY = """roles:
  chat:
    endpoint: http://127.0.0.1:9/v1
    model: m
    contxt_window: 4096
"""
_NOT_YAML = """roles:
  chat: {endpoint: http://127.0.0.1:9/v1, model: m
servers: {}
"""

BAD_FILES = [
    pytest.param(_UNKNOWN_ROLE, ":5: roles.chatt: unknown role; expected one of chat, reasoning, embedding", id="unknown-role"),
    pytest.param(_UNKNOWN_KEY, ":5: roles.chat.contxt_window: unknown key; expected one of endpoint, model", id="unknown-key"),
    pytest.param(_NOT_YAML, ": not valid YAML", id="not-yaml"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
async def test_the_doctor_names_file_line_and_expectation(tmp_path: Path, content: str, message: str) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(content)
    run = await run_doctor(clean_environment(tmp_path / "data", DUCKLM_RUNTIME_MODELS_FILE=str(models)), "--only", "config")
    check = run.find("config", "models.yaml")
    assert check["status"] == "fail"
    assert check["detail"].startswith(str(models))
    assert message in check["detail"]
    assert run.code == 1


async def _run_module(module: str, env: dict[str, str], *arguments: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *arguments, env=env, cwd=repo_root(),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_the_runtime_service_refuses_it_with_the_same_words(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(_UNKNOWN_ROLE)
    env = clean_environment(
        tmp_path / "data", DUCKLM_RUNTIME_MODELS_FILE=str(models), DUCKLM_RUNTIME_ADDRESS="127.0.0.1:0",
        DUCKLM_RUNTIME_STANDALONE="true",
    )
    code, err = await _run_module("services.runtime", env)
    assert code == 2
    assert f"runtime: {models}:5: roles.chatt: unknown role" in err
    assert "Traceback" not in err


async def test_the_launcher_prints_the_config_line_instead_of_a_traceback(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(_UNKNOWN_KEY)
    env = clean_environment(
        tmp_path / "data", DUCKLM_RUNTIME_MODELS_FILE=str(models),
        # Paths the launcher takes as given, so nothing is built or fetched.
        DUCKLM_LLAMA_SERVER=str(tmp_path / "llama-server"), DUCKLM_MODEL_PATH=str(tmp_path / "model.gguf"),
    )
    code, err = await _run_module("deploy.stack", env, "--data-dir", str(tmp_path / "data"))
    assert code == 1
    assert f"DuckLM did not start: {models}:5: roles.chat.contxt_window: unknown key" in err
    assert "[FAIL] models.yaml:" in err
    assert "Traceback" not in err


async def test_an_address_without_a_port_is_named_by_its_variable(tmp_path: Path) -> None:
    run = await run_doctor(clean_environment(tmp_path / "data", DUCKLM_TOOLS_ADDRESS="localhost"), "--only", "config", "--only", "machine")
    check = run.find("config", "DUCKLM_TOOLS_ADDRESS")
    assert check["status"] == "fail"
    assert "'localhost' is not HOST:PORT" in check["detail"]
    assert run.code == 1
