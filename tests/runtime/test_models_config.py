"""models.yaml: environment expansion, validation, clear errors, and the reply size it gives the
staged decider."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError, repo_root
from services.runtime.completion_client import LlamaCompletions
from services.runtime.config import Settings
from services.runtime.models_config import expand_env, load_models_config
from services.runtime.staged_step import make_decider


def test_the_shipped_file_maps_chat_and_embedding_to_local_servers() -> None:
    config = load_models_config(repo_root() / "config" / "models.yaml", {"DUCKLM_LLAMA_PORT": "9001"})
    chat = config.role("chat")
    assert chat is not None and chat.endpoint == "http://127.0.0.1:9001/v1"
    embedding = config.role("embedding")
    assert embedding is not None and embedding.endpoint == "http://127.0.0.1:8082/v1"
    assert config.servers["chat"].port == 9001
    assert "--embeddings" in config.servers["embedding"].args


def test_expand_env_uses_defaults_and_refuses_unset_variables() -> None:
    assert expand_env("a ${X:-b} c", {}) == "a b c"
    assert expand_env("${X:-b}", {"X": "y"}) == "y"
    with pytest.raises(ConfigError, match=r"\$\{NOPE\}"):
        expand_env("${NOPE}", {})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("roles: {}", "needs a `chat` role"),
        ("roles: {chat: {model: m}}", "endpoint"),
        ("roles: [", "not valid YAML"),
        ("roles: {chat: {endpoint: e, model: m, temperature: 9}}", "temperature"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_models_config(path, {})


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_models_config(tmp_path / "nope.yaml", {})


def test_the_staged_decider_caps_free_text_at_the_chat_models_reply_size_by_default() -> None:
    config = load_models_config(repo_root() / "config" / "models.yaml", {})
    chat = config.role("chat")
    assert chat is not None
    unset = make_decider(Settings(max_reply_chars=None), LlamaCompletions(config))
    assert unset is not None and unset.max_text_chars == chat.reply_chars()
    configured = make_decider(Settings(max_reply_chars=300), LlamaCompletions(config))
    assert configured is not None and configured.max_text_chars == 300
