"""Where the client finds DuckLM: one address per gRPC service, a token and TLS, read from the
same `DUCKLM_*` variables the services read (so on one machine they agree), or given in code.

| what | variable | default |
|---|---|---|
| runtime (tasks, chat, events, replay) | DUCKLM_RUNTIME_ADDRESS | 127.0.0.1:50051 |
| tools + approvals | DUCKLM_TOOLS_ADDRESS | 127.0.0.1:50052 |
| skills | DUCKLM_SKILLS_ADDRESS | 127.0.0.1:50053 |
| memory | DUCKLM_MEMORY_ADDRESS | 127.0.0.1:50054 |
| shared token | DUCKLM_GRPC_TOKEN | none |
| CA certificate(s) for TLS | DUCKLM_GRPC_TLS_CA | none (plaintext) |
| approver credential (to approve and deny) | DUCKLM_APPROVER_TOKEN, or the file DUCKLM_APPROVER_TOKEN_FILE | `$DUCKLM_DATA_DIR/approver.token` (`data/`), which `make run` writes |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["SERVICES", "Connection"]

SERVICES = ("runtime", "tools", "skills", "memory")

_DEFAULTS = {
    "runtime": "127.0.0.1:50051",
    "tools": "127.0.0.1:50052",
    "skills": "127.0.0.1:50053",
    "memory": "127.0.0.1:50054",
}


def _connectable(address: str) -> str:
    """A service bound to every interface (0.0.0.0:50051) is reached on this machine's loopback."""
    host, _, port = address.rpartition(":")
    return f"127.0.0.1:{port}" if host in ("0.0.0.0", "[::]", "::") else address


def _approver_token(env: Mapping[str, str]) -> str:
    if env.get("DUCKLM_APPROVER_TOKEN"):
        return env["DUCKLM_APPROVER_TOKEN"]
    named = env.get("DUCKLM_APPROVER_TOKEN_FILE", "")
    path = Path(named) if named else Path(env.get("DUCKLM_DATA_DIR") or "data") / "approver.token"
    if not named and not path.is_file():
        return ""  # no stack started here: deciding will say what is missing
    return path.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class Connection:
    """Addresses and credentials. `Connection.from_env()` reads the variables above."""

    runtime: str = _DEFAULTS["runtime"]
    tools: str = _DEFAULTS["tools"]
    skills: str = _DEFAULTS["skills"]
    memory: str = _DEFAULTS["memory"]
    # Sent as `authorization: Bearer <token>` when set. Never logged, never printed.
    token: str = ""
    # PEM CA certificate(s); when set, every channel uses TLS.
    root_certificates: bytes | None = None
    # Sent (metadata `ducklm-approver-token`) with Approve and Deny only: the human's credential,
    # without which the tools service lets nobody decide. Never logged, never printed.
    approver_token: str = ""
    # How the decision was made, recorded with it ("human via <label>").
    approver_via: str = "client"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Connection:
        env = os.environ if environ is None else environ
        addresses = {
            name: _connectable(env.get(f"DUCKLM_{name.upper()}_ADDRESS") or _DEFAULTS[name])
            for name in SERVICES
        }
        ca_path = env.get("DUCKLM_GRPC_TLS_CA", "")
        certificates = Path(ca_path).read_bytes() if ca_path else None
        return cls(
            **addresses,
            token=env.get("DUCKLM_GRPC_TOKEN", ""),
            root_certificates=certificates,
            approver_token=_approver_token(env),
        )

    def with_addresses(self, **addresses: str | None) -> Connection:
        """A copy with the given (non-empty) addresses replaced, e.g. from command-line flags."""
        given: dict[str, Any] = {name: address for name, address in addresses.items() if address}
        unknown = set(given) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; DuckLM's are {list(SERVICES)}")
        return replace(self, **given)

    def address(self, service: str) -> str:
        address: str = getattr(self, service)
        return address
