"""`ducklm up`: finds the checkout, builds/fetches what is missing with progress shown, then runs
`python -m deploy.stack` there with the paths it prepared."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from ducklm_client.cli.up import find_checkout, prepare, run_setup_script

from services.common.config import repo_root
from tests.clients.conftest import ducklm

SLOW_BUILD = """\
#!/usr/bin/env bash
echo ">> downloading the sources" >&2
echo ">> building llama-server with 2 jobs" >&2
for percent in 3 9 14 27 31 58 64 99 100; do
  printf '[%3d%%] Building CXX object ggml/src/part-%d.o\\n' "$percent" "$percent" >&2
done
echo "$1"
"""


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_progress_shows_each_stage_and_every_tenth_percent(tmp_path: Path) -> None:
    out = io.StringIO()
    fake = script(tmp_path, "build.sh", SLOW_BUILD.replace("$1", str(tmp_path / "bin" / "llama-server")))
    path = run_setup_script(fake, "llama-server", out)
    assert path == tmp_path / "bin" / "llama-server"
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("llama-server: downloading the sources (")
    assert lines[1].startswith("llama-server: building llama-server with 2 jobs (")
    percents = [line.split("jobs")[1].split("(")[0].strip() for line in lines[2:-1]]
    assert percents == ["3%", "14%", "27%", "58%", "99%"]
    assert lines[-1].startswith(f"llama-server: ready: {path} (")


def test_a_failing_setup_script_says_why(tmp_path: Path) -> None:
    fake = script(
        tmp_path, "fail.sh", "echo '>> compiling' >&2\necho 'error: no compiler found' >&2\nexit 3\n"
    )
    with pytest.raises(
        RuntimeError, match=r"fail.sh failed with exit code 3:\n(.|\n)*error: no compiler found"
    ):
        run_setup_script(fake, "llama-server", io.StringIO())


def test_the_checkout_is_found_from_inside_it_or_from_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUCKLM_HOME", raising=False)
    assert find_checkout(repo_root() / "services" / "runtime") == repo_root()
    # Outside any checkout, the editable install leads back to this repository.
    assert find_checkout(tmp_path) == repo_root()


def test_prepare_reuses_what_this_machine_has_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUCKLM_LLAMA_SERVER", raising=False)
    monkeypatch.delenv("DUCKLM_MODEL_PATH", raising=False)
    out = io.StringIO()
    env = prepare(repo_root(), out)
    assert os.access(env["DUCKLM_LLAMA_SERVER"], os.X_OK)
    assert Path(env["DUCKLM_MODEL_PATH"]).stat().st_size > 10_000_000
    assert "llama-server: ready:" in out.getvalue() and "model: ready:" in out.getvalue()


async def test_ducklm_up_prepares_then_starts_the_stack(tmp_path: Path) -> None:
    """A stand-in checkout whose deploy.stack reports how it was started."""
    (tmp_path / "deploy").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "deploy" / "__init__.py").write_text("")
    (tmp_path / "deploy" / "stack.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(),\n"
        "                  'llama': os.environ['DUCKLM_LLAMA_SERVER'], 'model': os.environ['DUCKLM_MODEL_PATH']}))\n"
    )
    script(tmp_path / "scripts", "build_llama_server.sh", SLOW_BUILD.replace("$1", "/opt/llama-server"))
    script(
        tmp_path / "scripts", "fetch_model.sh", "echo '>> downloading the model' >&2\necho /opt/model.gguf\n"
    )
    script(
        tmp_path / "scripts", "fetch_embedding_model.sh",
        "echo '>> converting the embedding model' >&2\necho /opt/embedding.gguf\n",
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("DUCKLM_")}
    env["DUCKLM_HOME"] = str(tmp_path)
    finished = await ducklm("up", "--port", "9999", env=env)
    assert finished.code == 0, finished.stderr
    started = json.loads(finished.stdout.strip().splitlines()[-1])
    assert started == {
        "argv": ["--port", "9999"],
        "cwd": str(tmp_path),
        "llama": "/opt/llama-server",
        "model": "/opt/model.gguf",
    }
    assert "llama-server: building llama-server with 2 jobs" in finished.stderr
    assert "model: ready: /opt/model.gguf" in finished.stderr
