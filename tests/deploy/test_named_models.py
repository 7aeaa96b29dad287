"""The shipped-model registry: choosing a model by name rewrites the models file the stack and
the evaluation use, a GGUF given by path gets its model's flags, and a wrong name is refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.named_models import NAMED_MODELS, apply_named_model, named_model, named_model_for_path
from scripts.eval.run_eval import models_file_for
from services.common.config import ConfigError, repo_root
from services.runtime.models_config import load_models_config

BASE = repo_root() / "config" / "models.yaml"
# What the stack puts in the environment before the file is read.
ENV = {"DUCKLM_EMBEDDING_MODEL_PATH": "/models/embedding.gguf"}


def _raw() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(BASE.read_text(encoding="utf-8"))
    return loaded


def test_an_unknown_name_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="gemma3-270m"):
        named_model("gemma-9000")


def test_gemma_gets_its_chat_template_and_path(tmp_path: Path) -> None:
    gguf = tmp_path / "gemma-3-270m.Q4_K_M.gguf"
    raw = apply_named_model(_raw(), named_model("gemma3-270m"), gguf)
    out = tmp_path / "models.yaml"
    out.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_models_config(out, ENV)
    assert config.roles["chat"].model == "gemma-3-270m"
    server = config.servers["chat"]
    assert server.model_path == str(gguf)
    # The default model's own arguments are kept; the template flag comes after them.
    assert server.args[-2:] == ["--chat-template", "gemma"]
    assert "--ctx-size" in server.args
    role = config.roles["chat"]
    # No repeat penalty (under one Gemma pads JSON with whitespace); whitespace runs banned in
    # JSON calls only (a plain-text answer stops on a newline), never the single space.
    assert role.extra_body["repeat_penalty"] == 1.0
    assert "logit_bias" not in role.extra_body
    banned = {token for token, bias in role.json_extra_body["logit_bias"] if bias is False}
    assert {107, 108, 138, 255968} <= banned
    assert 236743 not in banned


def test_a_shipped_gguf_given_by_path_is_recognised(tmp_path: Path) -> None:
    gguf = tmp_path / NAMED_MODELS["gemma3-270m"].file_name
    gguf.write_bytes(b"GGUF" + b"\0" * 12)
    assert named_model_for_path(gguf) is NAMED_MODELS["gemma3-270m"]
    written = models_file_for(str(gguf), tmp_path, BASE)
    assert written is not None
    config = load_models_config(written, ENV)
    assert config.servers["chat"].args[-2:] == ["--chat-template", "gemma"]
    assert config.roles["chat"].model == "gemma-3-270m"


def test_another_gguf_keeps_the_default_flags(tmp_path: Path) -> None:
    gguf = tmp_path / "my-model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 12)
    assert named_model_for_path(gguf) is None
    written = models_file_for(str(gguf), tmp_path, BASE)
    assert written is not None
    config = load_models_config(written, ENV)
    assert "--chat-template" not in config.servers["chat"].args
    assert config.roles["chat"].model == "my-model"


def test_fetch_script_uses_the_cached_model_without_downloading(tmp_path: Path) -> None:
    cached = tmp_path / "models" / NAMED_MODELS["gemma3-270m"].file_name
    cached.parent.mkdir()
    cached.write_bytes(b"GGUF")
    # No network and no python: a cached model must be answered before either is needed.
    env = {**os.environ, "DUCKLM_CACHE_DIR": str(tmp_path), "PYTHON": "/nonexistent/python"}
    result = subprocess.run(["bash", str(repo_root() / "scripts" / "fetch_gemma.sh")], env=env,
                            check=True, capture_output=True, text=True)
    assert result.stdout.strip() == str(cached)


def test_make_run_passes_the_model_name() -> None:
    # A make of its own, even when the suite itself runs under `make test`.
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    make = ["make", "--no-print-directory", "-n"]
    dry = subprocess.run([*make, "run", "MODEL=gemma3-270m"], cwd=repo_root(), check=True, env=env,
                         capture_output=True, text=True).stdout
    assert "DUCKLM_MODEL=gemma3-270m" in dry.splitlines()[-1]
    assert "fetch_gemma" not in subprocess.run([*make, "install"], cwd=repo_root(), check=True, env=env,
                                               capture_output=True, text=True).stdout
