"""The policy file (config/tools.yaml): which tools need approval, which programs may run and
with which arguments, and which workspace paths are never written.

The policy version is the SHA-256 of the file's bytes. Every action hash includes it, so editing
the policy (and restarting) makes every earlier approval stop matching.

This module only reads and validates the file; it never runs anything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.config import ConfigError
from services.tools.options import OptionSet, Style, parse_spec

__all__ = ["CommandRule", "Policy", "ToolPolicy", "load_policy", "parse_policy"]

PROGRAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class CommandRule(BaseModel):
    """How one program (or one subcommand of it) may be invoked."""

    model_config = ConfigDict(extra="forbid")

    # Runs without approval, in a sandbox whose workspace is mounted read-only.
    read_only: bool = False
    # Every option the program may get (services/tools/options.py has the syntax): `-x`,
    # `-x VALUE`, `-x[VALUE]`, `--name`, `--name=VALUE`, `--name[=VALUE]`, `-NUM`. Anything else
    # starting with '-' is refused; a long option may be abbreviated and is then written out.
    allowed_options: list[str] = Field(default_factory=list)
    # "gnu" (getopt_long clusters and prefixes) or "words" (find's exact `-name VALUE` words).
    option_style: Style = Style.GNU
    # An approved run may write protected paths that exist (git add/commit write `.git`); the
    # policy's `sandbox_read_only` paths stay read-only even then. A program's setting applies
    # to its subcommands.
    writes_protected: bool = False
    # The first argument must be an option (refuses tar's old-style `tar xf...`).
    options_first: bool = False
    # Arguments inserted right after the program (or subcommand), e.g. git diff --no-ext-diff.
    prepend_args: list[str] = Field(default_factory=list)
    # Extra environment variables for this program (added to the minimal environment).
    env: dict[str, str] = Field(default_factory=dict)
    # If set, the first argument must be one of these subcommands; each has its own rule, and
    # the program's allowed_options and env apply to all of them too.
    subcommands: dict[str, CommandRule] | None = None

    @field_validator("allowed_options")
    @classmethod
    def _option_specs(cls, allowed: list[str]) -> list[str]:
        for text in allowed:
            parse_spec(text)
        return allowed

    def option_set(self, program: str, inherited: Sequence[str] = ()) -> OptionSet:
        """The parser over this rule's allowed options (plus a parent program's)."""
        specs = [parse_spec(text) for text in (*inherited, *self.allowed_options)]
        return OptionSet(program, specs, self.option_style)


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
    # Globs (relative to the workspace) that no tool writes and no command names; in an approved
    # command's sandbox the ones that exist are mounted read-only.
    protected_paths: list[str] = Field(default_factory=list)
    # Globs mounted read-only in every command's sandbox, also for `writes_protected` programs
    # (git config and hooks, which could turn a later command into code).
    sandbox_read_only: list[str] = Field(default_factory=list)
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
