"""The exact action of an MCP tool call, which an approval is bound to, and the pattern a
TASK_PATTERN grant of it covers.

The action hash covers the server's identity (its configured command line, sandbox and
environment as written, or its URL), the tool's name, the SHA-256 of the tool's input schema as
the server listed it, the annotations the server gave (shown to the approver, never trusted),
the canonical arguments and the policy version. A server that changes a tool's schema (or
annotations, or its own command line) therefore needs a fresh approval. The pattern is the same
without the arguments: "this tool of this server, as listed, with any arguments, in this task".

This module only computes identities; it never approves or calls anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidArgument
from services.tools.canonical import Action, canonical_json, canonical_value
from services.tools.patterns import Pattern

__all__ = ["McpToolIdentity", "mcp_action", "mcp_pattern", "schema_hash"]


def schema_hash(schema: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a listed input schema."""
    return _sha256(canonical_json(schema))


def _sha256(text: str) -> str:
    try:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    except UnicodeEncodeError:
        raise InvalidArgument("arguments must be valid Unicode text (no lone surrogates)") from None


@dataclass(frozen=True)
class McpToolIdentity:
    """Everything but the arguments that makes one MCP tool call the action it is."""

    # `server.tool`, as the catalogue names it.
    name: str
    server: str
    # The tool's own name on its server.
    tool: str
    server_identity: dict[str, Any]
    # One line naming the server for the approver (the command line or URL).
    server_text: str
    input_schema_sha256: str
    annotations: dict[str, Any]

    def hashed_fields(self, policy_version: str) -> dict[str, Any]:
        return {
            "annotations_from_server": self.annotations,
            "input_schema_sha256": self.input_schema_sha256,
            "mcp_server": {"identity": self.server_identity, "name": self.server},
            "mcp_tool": self.tool,
            "policy_version": policy_version,
            "tool": self.name,
        }


def mcp_action(identity: McpToolIdentity, arguments: dict[str, Any], policy_version: str) -> Action:
    """The action of calling the tool with `arguments`, with its canonical JSON and hash."""
    args = canonical_value(arguments)
    text = canonical_json({**identity.hashed_fields(policy_version), "arguments": args, "kind": "mcp tool call"})
    # The approval's working directory names where the call goes: the server.
    where = f"MCP server '{identity.server}': {identity.server_text}"
    return Action(identity.name, args, where, policy_version, text, _sha256(text))


def mcp_pattern(identity: McpToolIdentity, policy_version: str) -> Pattern:
    """What a TASK_PATTERN grant covers: every call of this tool, as listed now, in the task."""
    text = canonical_json({**identity.hashed_fields(policy_version), "kind": "mcp tool pattern"})
    shown = f"{identity.name} with any arguments (MCP server '{identity.server}': {identity.server_text})"
    return Pattern(text=shown, hash=_sha256(text), operands=(), clear_of_protected=True)
