"""The doctor's machine checks on this machine: a port taken by another program and a
read-only workspace (a real read-only mount) are each reported by their own line, with the
variable that fixes them, and a non-zero exit."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from services.common.testing import free_port
from tests.doctor.conftest import clean_environment, run_doctor, write_models


def _free_stack_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """Every port on a free one (the machine is shared), roles only: no llama-server to start."""
    models = write_models(tmp_path / "models.yaml", {"chat": {"endpoint": "http://127.0.0.1:9/v1", "model": "m"}})
    addresses = {f"DUCKLM_{s}_ADDRESS": f"127.0.0.1:{free_port()}" for s in ("RUNTIME", "TOOLS", "SKILLS", "MEMORY")}
    return clean_environment(
        tmp_path / "data",
        DUCKLM_RUNTIME_MODELS_FILE=str(models),
        DUCKLM_GATEWAY_PORT=str(free_port()),
        **{**addresses, **variables},
    )


async def test_a_free_machine_passes(tmp_path: Path) -> None:
    run = await run_doctor(_free_stack_env(tmp_path), "--only", "machine")
    assert run.failed == []
    assert run.find("machine", "sandbox")["status"] == "pass"
    assert run.find("machine", "llama-server")["status"] == "skip"
    assert run.code == 0


async def test_a_port_taken_by_another_program_names_it_and_the_variable_that_moves_ducklm(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        run = await run_doctor(
            _free_stack_env(tmp_path, DUCKLM_TOOLS_ADDRESS=f"127.0.0.1:{port}"), "--only", "machine"
        )
    check = run.find("machine", f"port {port}")
    assert check["status"] == "fail"
    assert f"pid {os.getpid()}" in check["detail"]
    assert "DUCKLM_TOOLS_ADDRESS" in check["fix"]
    assert run.failed == [("machine", f"port {port}")]
    assert run.code == 1


async def test_a_read_only_workspace_fails_the_workspace_line(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    env = _free_stack_env(tmp_path, DUCKLM_TOOLS_WORKSPACE_DIR=str(workspace))
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux's unshare is part of every Debian"
    # A real read-only mount in a private mount namespace: permission bits would not stop root.
    wrapper = [unshare, "--mount", "--map-root-user", "sh", "-c", f'mount --bind -o ro "{workspace}" "{workspace}" && exec "$@"', "sh"]
    run = await run_doctor(env, "--only", "machine", wrapper=wrapper)
    check = run.find("machine", "workspace folder")
    assert check["status"] == "fail"
    assert "Read-only file system" in check["detail"]
    assert "DUCKLM_TOOLS_WORKSPACE_DIR" in check["fix"]
    assert run.failed == [("machine", "workspace folder")]
    assert run.code == 1
