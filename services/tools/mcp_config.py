"""The MCP server list (config/mcp.yaml): which MCP servers the tools service connects to, how
each is started or reached, what its sandbox lets it see, and which of its tools run without an
approval.

An absent or empty file means no servers. A stdio server is started by the tools service
(`command`, `args`, `env`, `cwd`); a streamable-HTTP server is reached at `url` with `headers`.
`${NAME}` in an `env` or `headers` value is replaced by the service's environment variable NAME,
so a token need not be written in the file (and never enters an approval's identity).

This module only reads and validates the file; it never starts or calls anything.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.common.config import ConfigError
from services.tools.canonical import canonical_json

__all__ = ["SERVER_NAME", "McpConfig", "McpServerConfig", "expand", "load_mcp_config", "parse_mcp_config"]

# A server's name prefixes its tools (`name.tool`), so it holds no dot.
SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class McpServerConfig(BaseModel):
    """One MCP server: a stdio command or a streamable-HTTP URL, and what it may do."""

    model_config = ConfigDict(extra="forbid")

    # stdio: the program (an absolute path, or a name looked up on the service's PATH) and its
    # arguments, extra environment variables, and working directory (absolute; default /).
    command: str = ""
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str = ""
    # streamable HTTP: the endpoint, and headers sent with every request (e.g. a bearer token).
    url: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    # Sandbox of a stdio server: folders (absolute) it sees read-only and read-write; the
    # workspace ("none", "read-only" or "read-write"); and whether it may reach the network.
    paths: list[str] = Field(default_factory=list)
    writable_paths: list[str] = Field(default_factory=list)
    workspace: Literal["none", "read-only", "read-write"] = "none"
    network: bool = False
    # Tools (their names on the server) that run without an approval. Nothing else does:
    # the server's own annotations (readOnlyHint, ...) are shown, never trusted.
    free_tools: list[str] = Field(default_factory=list)
    # Longest wait for the server to start and list its tools, and for one call.
    start_timeout_seconds: float = Field(default=30.0, gt=0)
    call_timeout_seconds: float = Field(default=60.0, gt=0)
    enabled: bool = True

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either `command` (a stdio server) or `url` (a streamable-HTTP server)")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("`url` must start with http:// or https://")
        if self.url and (self.args or self.env or self.cwd or self.paths or self.writable_paths):
            raise ValueError("args, env, cwd, paths and writable_paths apply to stdio servers only")
        return self

    @field_validator("paths", "writable_paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not os.path.isabs(path):
                raise ValueError(f"'{path}' must be an absolute path")
        return paths

    @field_validator("cwd")
    @classmethod
    def _absolute_cwd(cls, cwd: str) -> str:
        if cwd and not os.path.isabs(cwd):
            raise ValueError(f"cwd '{cwd}' must be an absolute path")
        return cwd

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command else "http"

    def identity(self) -> dict[str, Any]:
        """What an approval of this server's tools is bound to: its command line (with env
        and sandbox as configured, `${NAME}` unexpanded) or its URL; never a header's value."""
        if self.transport == "http":
            return {"transport": "http", "url": self.url}
        return {
            "transport": "stdio",
            "command": self.command,
            "args": self.args,
            "cwd": self.cwd or "/",
            "env": self.env,
            "network": self.network,
            "paths": self.paths,
            "workspace": self.workspace,
            "writable_paths": self.writable_paths,
        }

    def identity_text(self) -> str:
        """One line naming the server for an approver."""
        if self.transport == "http":
            return self.url
        return " ".join([self.command, *self.args])


class McpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    servers: dict[str, McpServerConfig] = Field(default_factory=dict)

    @field_validator("servers")
    @classmethod
    def _names(cls, servers: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in servers:
            if not SERVER_NAME.fullmatch(name):
                raise ValueError(f"server name '{name}' must be 1-32 letters, digits, '_' or '-'")
        return servers

    def identity_json(self, name: str) -> str:
        return canonical_json(self.servers[name].identity())


def expand(value: str) -> str:
    """`value` with each `${NAME}` replaced by the environment variable NAME (an error if unset)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"config/mcp.yaml uses ${{{name}}}, which is not set in the environment")
        return os.environ[name]

    return _VARIABLE.sub(replace, value)


def parse_mcp_config(text: str, source: str = "config/mcp.yaml") -> McpConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from None
    if data is None:
        return McpConfig()
    try:
        return McpConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source} is invalid: {exc}") from None


def load_mcp_config(path: Path) -> McpConfig:
    """The servers of `path`; none when the file is absent or empty (blocking: reads a file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return McpConfig()
    return parse_mcp_config(text, str(path))
