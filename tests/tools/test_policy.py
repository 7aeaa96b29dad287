"""Loading the policy file and the settings: validation, the policy version, defaults."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from services.common.config import ConfigError, data_dir, load_settings, repo_root
from services.tools.config import Settings
from services.tools.policy import load_policy, parse_policy

from .support import DEFAULT_POLICY, StartTools, write_policy


def test_shipped_policy_loads_and_its_version_is_its_hash() -> None:
    policy = load_policy(DEFAULT_POLICY)
    assert policy.version == hashlib.sha256(DEFAULT_POLICY.read_bytes()).hexdigest()
    assert {"ls", "cat", "git", "find"} <= set(policy.commands)
    assert not {"sh", "bash", "env", "python3", "xargs", "sed"} & set(policy.commands)
    assert (
        policy.commands["git"].subcommands is not None
        and policy.commands["git"].subcommands["status"].read_only
    )


def test_any_byte_changes_the_version() -> None:
    text = DEFAULT_POLICY.read_bytes()
    assert parse_policy(text).version != parse_policy(text + b"\n").version


@pytest.mark.parametrize(
    "text, problem",
    [
        (b"commands: [", "not valid YAML"),
        (b"- just a list", "must be a YAML mapping"),
        (b"allow_everything: true", "allow_everything"),
        (b"commands: {'/bin/sh': {}}", "bare name"),
        (b"commands: {'ls -la': {}}", "bare name"),
        (b"search_path: 'bin:/usr/bin'", "absolute"),
        (b"commands: {ls: {read_only: maybe}}", "read_only"),
        (b"commands: {ls: {allowed_options: ['-l VALUE VALUE']}}", "option spec"),
        (b"commands: {ls: {option_style: posix}}", "option_style"),
        # Blocklists are gone: an old policy is refused rather than read as allowing everything.
        (b"commands: {ls: {denied_options: ['--dereference*']}}", "denied_options"),
    ],
)
def test_bad_policies_are_refused_with_a_clear_message(text: bytes, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_policy(text, "test.yaml")
    assert problem in str(refused.value)


async def test_server_refuses_a_missing_policy_or_unknown_tool(
    start_tools: StartTools, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="cannot read policy file"):
        await start_tools(policy_file=tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown tools: shell"):
        await start_tools(policy_file=write_policy(tmp_path / "policy.yaml", tools={"shell": {}}))


async def test_workspace_is_created_on_start(start_tools: StartTools, tmp_path: Path) -> None:
    client = await start_tools(workspace_dir=tmp_path / "deep" / "ws")
    assert (tmp_path / "deep" / "ws").is_dir()
    assert (await client.execute("list_dir", {})).ok


def test_settings_defaults_and_environment(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.address == "127.0.0.1:50052"
    assert settings.workspace_dir == data_dir() / "workspace"
    assert settings.database_path == data_dir() / "tools.db"
    assert settings.policy_file == repo_root() / "config" / "tools.yaml"
    loaded = load_settings(
        Settings,
        "tools",
        {"DUCKLM_TOOLS_WORKSPACE_DIR": str(tmp_path), "DUCKLM_TOOLS_COMMAND_TIMEOUT_SECONDS": "2.5"},
    )
    assert (loaded.workspace_dir, loaded.command_timeout_seconds) == (tmp_path, 2.5)
    with pytest.raises(ConfigError, match="DUCKLM_TOOLS_APPROVAL_TTL_SECONDS"):
        load_settings(Settings, "tools", {"DUCKLM_TOOLS_APPROVAL_TTL_SECONDS": "0"})
