"""Settings of the tools service, read from `DUCKLM_TOOLS_<FIELD>`; defaults run locally."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from services.common.auth import approver_token_from_env
from services.common.config import data_dir, repo_root

__all__ = ["Settings"]


class Settings(BaseModel):
    address: str = "127.0.0.1:50052"
    # The only folder the file tools and commands may touch (created on start).
    workspace_dir: Path = Field(default_factory=lambda: data_dir() / "workspace")
    # Approvals and their audit trail.
    database_path: Path = Field(default_factory=lambda: data_dir() / "tools.db")
    # A PostgreSQL DSN (postgresql://user:password@host:5432/db) for approvals instead of the
    # SQLite file `database_path`; several tools services may share it. Empty: SQLite.
    database_url: str = Field(default="", pattern=r"^$|^postgres(ql)?://", repr=False)
    # Allowlist and approval policy; its content hash is the policy version every approval binds.
    policy_file: Path = Field(default_factory=lambda: repo_root() / "config" / "tools.yaml")
    # The approver credential (DUCKLM_APPROVER_TOKEN or DUCKLM_APPROVER_TOKEN_FILE): only calls
    # carrying it may Approve or Deny. Empty: nobody can. The runtime is never given it.
    approver_token: str = Field(default_factory=approver_token_from_env, repr=False)
    # How long an approval stays usable; a human may shorten it per approval, never lengthen it.
    approval_ttl_seconds: int = Field(default=3600, gt=0)
    # Largest file read_file will open or write_file will write.
    max_file_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    # Most text read_file returns in one call (the rest is reported as truncated).
    max_read_bytes: int = Field(default=256 * 1024, gt=0)
    # Most bytes kept from each of a command's stdout and stderr.
    max_output_bytes: int = Field(default=64 * 1024, gt=0)
    # Default and longest run time of a command; a call may ask for less.
    command_timeout_seconds: float = Field(default=30.0, gt=0)
    # Run every command in the bubblewrap sandbox. Turning it off is explicit, and the tool
    # catalogue and the health name `ducklm.tools.v1.CommandSandbox` then say so.
    sandbox: bool = True
    # Limits inside the sandbox: CPU seconds, address space, largest file written, processes
    # (per sandbox user; not enforced for a service running as root), size of the fresh /tmp.
    command_cpu_seconds: int = Field(default=30, gt=0)
    command_memory_bytes: int = Field(default=2 * 1024**3, gt=0)
    command_file_bytes: int = Field(default=256 * 1024**2, gt=0)
    command_processes: int = Field(default=64, gt=0)
    command_tmp_bytes: int = Field(default=64 * 1024**2, gt=0)
    # Most entries list_dir and find_files return.
    max_list_entries: int = Field(default=1000, gt=0)
    # Most directory entries find_files looks at before it stops and reports truncation.
    max_find_scanned: int = Field(default=100_000, gt=0)
    # The MCP servers whose tools join the catalogue as `server.tool` (docs/mcp.md); an absent or
    # empty file means none.
    mcp_config_file: Path = Field(default_factory=lambda: repo_root() / "config" / "mcp.yaml")
    # Most characters of text one MCP tool result keeps; the rest is clipped, with a note.
    mcp_max_result_chars: int = Field(default=64 * 1024, gt=0)
    # Longest wait at start-up for the MCP servers' first starts (a failed one keeps retrying).
    mcp_start_wait_seconds: float = Field(default=15.0, ge=0)
    # First wait before an MCP server that stopped is started again (doubling, at most 30 s).
    mcp_restart_backoff_seconds: float = Field(default=0.5, ge=0)
