"""The tool catalogue: what the runtime shows the model (name, description, JSON Schema of the
arguments) and each tool's risk, which decides whether a call needs approval.

Arguments are kept flat and simple: a tiny model fills them through the schema. Paths are
relative to the workspace root.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from services.common.errors import InvalidArgument

__all__ = ["TOOLS", "Risk", "ToolSpec", "validate_arguments"]


class Risk(enum.Enum):
    READ_ONLY = 1
    WRITE = 2
    DANGEROUS = 3


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    schema: dict[str, Any]
    risk: Risk


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


# What a path argument names, for a runtime that constrains paths to what exists: "file" (an
# existing file), "dir" (an existing folder), "any" (an existing entry), "new" (may not exist yet),
# "glob" (a pattern of paths).
PATH_KIND_KEY = "x-ducklm-path"

# Marks a file's new content, for a runtime that offers the texts the request states.
CONTENT_KEY = "x-ducklm-content"
# Marks a command line, for a runtime that offers the commands the request types out.
ARGV_KEY = "x-ducklm-argv"


def _path(kind: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": 4096,
        "description": "Path relative to the workspace root.",
        PATH_KIND_KEY: kind,
    }


_OPTIONAL_PATH = {
    "type": "string",
    "maxLength": 4096,
    "description": "Folder relative to the workspace root; the root if left out.",
    PATH_KIND_KEY: "dir",
}

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "read_file",
        "Read a text file from the workspace. Returns its lines from `offset` (0 = first line), at most "
        "`limit` lines; `truncated` and `next_offset` tell you when there is more.",
        _object(
            {
                "path": _path("file"),
                "offset": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Lines to skip first (default 0).",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100000,
                    "description": "Most lines to return.",
                },
            },
            ["path"],
        ),
        Risk.READ_ONLY,
    ),
    ToolSpec(
        "write_file",
        "Write a text file in the workspace, replacing it if it exists (missing folders are created). "
        "The file is replaced all at once, never left half-written.",
        _object(
            {
                "path": _path("new"),
                "content": {"type": "string", "description": "The whole new content.", CONTENT_KEY: True},
            },
            ["path", "content"],
        ),
        Risk.WRITE,
    ),
    ToolSpec(
        "list_dir",
        "List the entries of a workspace folder (name, type, size).",
        _object({"path": _OPTIONAL_PATH}, []),
        Risk.READ_ONLY,
    ),
    ToolSpec(
        "stat_path",
        "Describe one workspace entry: type, size, permissions, modification time.",
        _object({"path": _path("any")}, ["path"]),
        Risk.READ_ONLY,
    ),
    ToolSpec(
        "make_dir",
        "Create a folder in the workspace (and any missing parents). Fine if it already exists.",
        _object({"path": _path("new")}, ["path"]),
        Risk.WRITE,
    ),
    ToolSpec(
        "find_files",
        "Find workspace entries whose path matches a glob pattern, e.g. '**/*.py' or 'src/*.txt'.",
        _object(
            {
                "pattern": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1024,
                    "description": "Glob; ** spans folders.",
                    PATH_KIND_KEY: "glob",
                },
                "path": _OPTIONAL_PATH,
            },
            ["pattern"],
        ),
        Risk.READ_ONLY,
    ),
    ToolSpec(
        "run_command",
        "Run an allowlisted program in the workspace, without a shell: give the program and each argument "
        'as separate list items, e.g. ["ls", "-l", "src"]. Read-only commands (ls, cat, git status, ...) '
        "run at once; others wait for a human approval.",
        _object(
            {
                "argv": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": 256,
                    "description": "Program name, then its arguments.",
                    ARGV_KEY: True,
                },
                "cwd": _OPTIONAL_PATH,
                "timeout_seconds": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 3600,
                    "description": "Stop after this many seconds (capped by the service).",
                },
            },
            ["argv"],
        ),
        Risk.DANGEROUS,
    ),
)

_VALIDATORS = {spec.name: Draft202012Validator(spec.schema) for spec in TOOLS}


def validate_arguments(tool_name: str, arguments: dict[str, Any]) -> None:
    """Raises InvalidArgument naming the first argument that does not fit the tool's schema."""
    error = best_match(_VALIDATORS[tool_name].iter_errors(arguments))
    if error is not None:
        where = error.json_path if error.path else "arguments"
        raise InvalidArgument(f"{tool_name}: {where}: {error.message}")
