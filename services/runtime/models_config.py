"""Reads config/models.yaml: which model endpoint serves each role, and which llama-server
processes the local launcher starts. `${VAR:-default}` is expanded from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from services.common.config import ConfigError

__all__ = ["ModelsConfig", "RoleConfig", "ServerConfig", "expand_env", "load_models_config"]

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class RoleConfig(BaseModel):
    """One role: an OpenAI-compatible endpoint (base URL ending in /v1) and how to call it."""

    endpoint: str
    model: str
    api_key: str = ""
    context_window: int = Field(default=8192, gt=0)
    max_tokens: int = Field(default=256, gt=0)
    # Longest reply (characters) this model may write in one directive; default: what max_tokens
    # leaves room for once the directive's JSON is written (see `reply_chars`).
    max_reply_chars: int | None = Field(default=None, gt=0)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    timeout_seconds: float = Field(default=120.0, gt=0)
    # Extra request fields passed through as they are (e.g. llama-server's `repeat_penalty`).
    extra_body: dict[str, Any] = Field(default_factory=dict)


    def reply_chars(self) -> int:
        if self.max_reply_chars is not None:
            return self.max_reply_chars
        # About three characters per token, less ~100 tokens for the directive's JSON around it.
        return max(200, (self.max_tokens - 100) * 3)


class ServerConfig(BaseModel):
    """A llama-server process the local launcher starts."""

    model_path: str = ""
    port: int = Field(gt=0, lt=65536)
    args: list[str] = Field(default_factory=list)


class ModelsConfig(BaseModel):
    roles: dict[str, RoleConfig]
    servers: dict[str, ServerConfig] = Field(default_factory=dict)

    def role(self, name: str) -> RoleConfig | None:
        return self.roles.get(name)


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replaces `${VAR}` and `${VAR:-default}` with values from `environ`."""
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name, "")
        if value:
            return value
        if default is None:
            raise ConfigError(f"models config uses ${{{name}}} but it is not set")
        return default

    return _VARIABLE.sub(replace, text)


def load_models_config(path: Path, environ: Mapping[str, str] | None = None) -> ModelsConfig:
    """Loads and validates the models file; errors name the file and the bad entry."""
    try:
        raw: Any = yaml.safe_load(expand_env(path.read_text(encoding="utf-8"), environ))
    except FileNotFoundError:
        raise ConfigError(f"models config not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"models config {path} is not valid YAML: {exc}") from None
    try:
        config = ModelsConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"models config {path} is invalid: {exc}") from None
    if "chat" not in config.roles:
        raise ConfigError(f"models config {path} needs a `chat` role")
    return config
