"""When the launcher cannot start the stack it prints the doctor's failing lines, not a
traceback: here a port one service needs is already taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from deploy.stack import LocalStack, StackPorts, explain_failed_start
from tests.doctor.conftest import write_models
from tests.doctor.stub_model import StubModel


async def test_a_failed_start_prints_the_failing_doctor_line(
    tmp_path: Path, stub_model: StubModel, capsys: pytest.CaptureFixture[str]
) -> None:
    models = write_models(tmp_path / "models.yaml", {"chat": {"endpoint": stub_model.endpoint, "model": stub_model.model_id}})
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        ports = StackPorts.free()
        ports.tools = squatter.getsockname()[1]
        stack = LocalStack(
            data_dir=tmp_path / "data", ports=ports, log_dir=tmp_path / "logs", services=("tools",),
            with_gateway=False, extra_env={"DUCKLM_RUNTIME_MODELS_FILE": str(models)},
        )
        with pytest.raises(RuntimeError, match="tools exited") as failure:
            await stack.start(timeout=60)
        code = await explain_failed_start(stack, failure.value)
    err = capsys.readouterr().err
    assert code == 1
    assert "DuckLM did not start: tools exited" in err
    assert f"[FAIL] port {ports.tools}: tools needs it, but pid" in err
    assert "DUCKLM_TOOLS_ADDRESS" in err
    # Only the failures are printed, and no traceback.
    assert "[ok  ]" not in err and "Traceback" not in err
