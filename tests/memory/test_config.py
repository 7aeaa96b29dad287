"""The memory service's settings: local defaults, DUCKLM_MEMORY_* variables, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError, load_settings
from services.memory.config import Settings


def test_defaults_run_locally_on_edge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DUCKLM_DATA_DIR", str(tmp_path))
    settings = load_settings(Settings, "memory", environ={})
    assert settings.address == "127.0.0.1:50054"
    assert settings.backend == "edge"
    assert settings.edge_path == tmp_path / "memory"
    assert settings.runtime_address == "127.0.0.1:50051"
    assert settings.collection == "memories"


def test_the_server_backend_reads_url_and_key_from_the_environment() -> None:
    settings = load_settings(Settings, "memory", environ={
        "DUCKLM_MEMORY_BACKEND": "qdrant",
        "DUCKLM_MEMORY_QDRANT_URL": "http://qdrant:6333",
        "DUCKLM_MEMORY_QDRANT_API_KEY": "s3cret",
    })
    assert settings.qdrant_url == "http://qdrant:6333"
    assert settings.qdrant_api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_the_server_backend_without_a_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs qdrant_url"):
        load_settings(Settings, "memory", environ={"DUCKLM_MEMORY_BACKEND": "qdrant"})


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match="DUCKLM_MEMORY_BACKEND"):
        load_settings(Settings, "memory", environ={"DUCKLM_MEMORY_BACKEND": "local"})
