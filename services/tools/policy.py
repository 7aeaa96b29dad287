"""The policy file (config/tools.yaml): which tools need approval, which programs may run and
with which arguments, and which workspace paths are never written.

The policy version is the SHA-256 of the file's bytes. Every action hash includes it, so editing
the policy (and restarting) makes every earlier approval stop matching.

This module only reads and validates the file; it never runs anything.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.config import ConfigError

__all__ = ["CommandRule", "Policy", "ToolPolicy", "load_policy", "parse_policy"]

PROGRAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class CommandRule(BaseModel):
    """How one program (or one subcommand of it) may be invoked."""

    model_config = ConfigDict(extra="forbid")

    # Runs without approval: the invocation only reads the workspace.
    read_only: bool = False
    # If set, every argument starting with '-' must match one of these globs (or `short_flags`).
    allowed_options: list[str] | None = None
    # Letters allowed in '-abc' clusters when `allowed_options` is set.
    short_flags: str = ""
    # Arguments matching any of these globs are refused.
    denied_options: list[str] = Field(default_factory=list)
    # Letters refused anywhere in a '-abc' cluster (e.g. "L" for ls: dereference links).
    denied_short_flags: str = ""
    # The first argument must be an option (refuses tar's old-style `tar xf...`).
    options_first: bool = False
    # Arguments inserted right after the program (or subcommand), e.g. git diff --no-ext-diff.
    prepend_args: list[str] = Field(default_factory=list)
    # Extra environment variables for this program (added to the minimal environment).
    env: dict[str, str] = Field(default_factory=dict)
    # If set, the first argument must be one of these subcommands; each has its own rule, and
    # the program's denied_options, denied_short_flags and env apply to all of them too.
    subcommands: dict[str, CommandRule] | None = None


class ToolPolicy(BaseModel):
    """Per-tool settings: whether it is offered and whether calls need a human approval."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # None: the default for the tool's risk (run_command: per-program `read_only`).
    requires_approval: bool | None = None


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Where allowlisted programs are looked up; the workspace is never searched.
    search_path: str = "/usr/bin:/bin"
    # Globs (relative to the workspace) that file tools and approved commands never write.
    protected_paths: list[str] = Field(default_factory=list)
    tools: dict[str, ToolPolicy] = Field(default_factory=dict)
    commands: dict[str, CommandRule] = Field(default_factory=dict)
    # SHA-256 of the policy file's bytes; filled in by the loader, not read from the file.
    version: str = ""

    @field_validator("commands")
    @classmethod
    def _program_names(cls, commands: dict[str, CommandRule]) -> dict[str, CommandRule]:
        for name in commands:
            if not PROGRAM_NAME.match(name):
                raise ValueError(f"program name {name!r} must be a bare name (no '/', no spaces)")
        return commands

    @field_validator("search_path")
    @classmethod
    def _absolute_search_path(cls, search_path: str) -> str:
        for folder in search_path.split(":"):
            if not folder.startswith("/"):
                raise ValueError(f"search_path entries must be absolute, not {folder!r}")
        return search_path


def parse_policy(text: bytes, source: str = "policy") -> Policy:
    """The policy in `text` (YAML), with its version; ConfigError says what is wrong."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a YAML mapping")
    raw.pop("version", None)
    try:
        policy = Policy(**raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{source} is invalid: {problems}") from exc
    policy.version = hashlib.sha256(text).hexdigest()
    return policy


def load_policy(path: Path) -> Policy:
    """Reads and validates the policy file (blocking; call it in a thread)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read policy file {path}: {exc.strerror}") from exc
    return parse_policy(text, str(path))
