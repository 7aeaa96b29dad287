"""Reads config/models.yaml: which model endpoint serves each role, and which llama-server
processes the local launcher starts. `${VAR:-default}` is expanded from the environment.

A bad file is refused with `path:line: key: what was expected`, so whoever edits it finds the
spot without reading a traceback."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.common.config import ConfigError
from services.common.errors import FailedPrecondition

__all__ = ["KNOWN_ROLES", "ModelsConfig", "RoleConfig", "ServerConfig", "expand_env", "load_models_config"]

# The roles the runtime asks for; any other name is a typo that would otherwise be ignored.
KNOWN_ROLES = ("chat", "reasoning", "embedding")

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class RoleConfig(BaseModel):
    """One role: an OpenAI-compatible endpoint (base URL ending in /v1) and how to call it."""

    # A misspelt key (`contxt_window`) is refused rather than silently left at its default.
    model_config = ConfigDict(extra="forbid")

    # One endpoint, or several serving the same model (`endpoints`, a pool: each task sticks
    # to one, and one that fails its health check is skipped); `endpoint` is then the first.
    endpoint: str = ""
    model: str
    endpoints: list[str] = Field(default_factory=list)
    api_key: str = ""
    context_window: int = Field(default=8192, gt=0)
    max_tokens: int = Field(default=256, gt=0)
    # Longest reply (characters) this model may write in one directive; default: what max_tokens
    # leaves room for once the directive's JSON is written (see `reply_chars`).
    max_reply_chars: int | None = Field(default=None, gt=0)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    # Longest wait for the next piece of a response (a server that stops sending times out).
    timeout_seconds: float = Field(default=120.0, gt=0)
    # Longest one call may take in all, however steadily the server sends; past it the call
    # ends with what arrived, marked as cut off.
    max_call_seconds: float = Field(default=300.0, gt=0)
    # Most characters one call's output may have (default: 16 per token of max_tokens, at
    # least 4096); past it the call ends, marked as cut off. Streamed chunks past max_tokens
    # end it too, for a server that ignores max_tokens.
    max_output_chars: int | None = Field(default=None, gt=0)
    # How long a call waits for a server that refuses connections or is still loading (HTTP
    # 503), e.g. while it restarts, before the call fails as unreachable.
    connect_wait_seconds: float = Field(default=15.0, ge=0)
    # Extra request fields passed through as they are (e.g. llama-server's `repeat_penalty`).
    extra_body: dict[str, Any] = Field(default_factory=dict)
    # Extra request fields for the calls constrained by a JSON schema only, over extra_body (e.g.
    # a `logit_bias` banning tokens JSON never needs but plain text does).
    json_extra_body: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_or_several_endpoints(self) -> RoleConfig:
        if self.endpoint and self.endpoints and self.endpoint not in self.endpoints:
            raise ValueError("give either `endpoint` or `endpoints` (a list), not both")
        if not self.endpoints:
            if not self.endpoint:
                raise ValueError("needs an `endpoint` (a /v1 URL) or `endpoints` (a list of them)")
            self.endpoints = [self.endpoint]
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError("`endpoints` lists the same URL twice")
        self.endpoint = self.endpoints[0]
        return self

    @property
    def output_char_cap(self) -> int:
        return self.max_output_chars or max(16 * self.max_tokens, 4096)


    def reply_chars(self) -> int:
        if self.max_reply_chars is not None:
            return self.max_reply_chars
        # About three characters per token, less ~100 tokens for the directive's JSON around it.
        return max(200, (self.max_tokens - 100) * 3)


class ServerConfig(BaseModel):
    """A llama-server process the local launcher starts."""

    model_config = ConfigDict(extra="forbid")

    model_path: str = ""
    port: int = Field(gt=0, lt=65536)
    args: list[str] = Field(default_factory=list)


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: dict[str, RoleConfig]
    servers: dict[str, ServerConfig] = Field(default_factory=dict)

    def role(self, name: str) -> RoleConfig | None:
        return self.roles.get(name)

    def require(self, name: str) -> RoleConfig:
        """The role, or FAILED_PRECONDITION saying that models.yaml lacks it."""
        config = self.roles.get(name)
        if config is None:
            raise FailedPrecondition(f"no model is configured for role {name!r} in models.yaml")
        return config


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
    """Loads and validates the models file; errors name the file, the line and the bad key."""
    try:
        text = expand_env(path.read_text(encoding="utf-8"), environ)
    except FileNotFoundError:
        raise ConfigError(f"models config not found: {path}") from None
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: expected a mapping with `roles:` at the top, got {type(raw).__name__}")
    lines = _key_lines(text)
    unknown = [name for name in raw.get("roles") or {} if name not in KNOWN_ROLES]
    if unknown:
        name = unknown[0]
        raise ConfigError(
            f"{path}:{lines.get(('roles', name), 1)}: roles.{name}: unknown role; "
            f"expected one of {', '.join(KNOWN_ROLES)}"
        )
    try:
        config = ModelsConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            "; ".join(_describe(path, lines, tuple(error["loc"]), _expected(error)) for error in exc.errors())
        ) from None
    if "chat" not in config.roles:
        raise ConfigError(f"{path}:{lines.get(('roles',), 1)}: roles: needs a `chat` role (the agent loop)")
    return config


def _expected(error: Any) -> str:
    """Pydantic's message, or for a key no model has, the keys that are allowed there."""
    if error["type"] != "extra_forbidden":
        return str(error["msg"])
    model = {1: ModelsConfig, 3: RoleConfig if error["loc"][0] == "roles" else ServerConfig}.get(len(error["loc"]))
    allowed = ", ".join(model.model_fields) if model is not None else "no other key"
    return f"unknown key; expected one of {allowed}"


def _describe(path: Path, lines: dict[tuple[str, ...], int], loc: tuple[Any, ...], message: str) -> str:
    """`path:line: roles.chat.temperature: <what pydantic expected>`, at the deepest key found."""
    keys = tuple(str(part) for part in loc)
    line = next((lines[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in lines), 1)
    return f"{path}:{line}: {'.'.join(keys) or '(top)'}: {message}"


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The 1-based line of every mapping key, by its path of keys (("roles", "chat"): 12)."""
    found: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, at: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*at, str(key.value))
                found[here] = key.start_mark.line + 1
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                found[(*at, str(index))] = item.start_mark.line + 1
                walk(item, (*at, str(index)))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return found
