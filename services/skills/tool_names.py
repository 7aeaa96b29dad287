"""What a skill's `allowed-tools` names mean in DuckLM: Claude Code's tool names mapped to DuckLM's.

In the Agent Skills spec (and in Claude Code) `allowed-tools` lists tools that are *pre-approved*
while the skill is in use; it never narrows what the model may call. Skill authors write Claude
Code's names (`Read`, `Bash(git status:*)`, `Grep`…), so each name is mapped here to the DuckLM
tools that do the same job, and a name that maps to nothing is reported as a warning. Pure: no
I/O, no knowledge of which tools a running tools service offers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BUILT_IN_TOOLS", "CLAUDE_CODE_TOOLS", "ToolMapping", "map_allowed_tools", "split_allowed_tools"]

# DuckLM's built-in tools (services/tools/catalogue.py). A skill may name them directly.
BUILT_IN_TOOLS = ("read_file", "write_file", "list_dir", "stat_path", "make_dir", "find_files", "run_command")

# Claude Code tool -> the DuckLM tools that do its job. Edits become read + whole-file writes
# (DuckLM has no patch tool); content search (`Grep`) is the read-only pair find + read.
CLAUDE_CODE_TOOLS: dict[str, tuple[str, ...]] = {
    "Read": ("read_file", "stat_path"),
    "Write": ("write_file", "make_dir"),
    "Edit": ("read_file", "write_file"),
    "MultiEdit": ("read_file", "write_file"),
    "NotebookEdit": ("read_file", "write_file"),
    "NotebookRead": ("read_file",),
    "Bash": ("run_command",),
    "BashOutput": ("run_command",),
    "Grep": ("find_files", "read_file"),
    "Glob": ("find_files",),
    "LS": ("list_dir", "stat_path"),
}

# `Bash(git status:*)`, `Read(./src/**)`: the tool name before the parenthesised pattern.
_PATTERNED = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*\(.*\)$", re.DOTALL)


@dataclass(frozen=True)
class ToolMapping:
    """`tools`: the DuckLM tools the names pre-approve, in order; `unknown`: names that map to none."""

    tools: tuple[str, ...]
    unknown: tuple[str, ...]


def split_allowed_tools(value: str) -> list[str]:
    """Splits an `allowed-tools` string on spaces and commas outside parentheses, so
    `Bash(git add:*), Read` gives two entries, not four."""
    entries: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        if depth == 0 and (ch.isspace() or ch == ","):
            if current:
                entries.append("".join(current))
                current = []
            continue
        current.append(ch)
    if current:
        entries.append("".join(current))
    return entries


def map_allowed_tools(names: tuple[str, ...] | list[str]) -> ToolMapping:
    """Maps every entry of `allowed-tools` to DuckLM tools. Matching is exact for DuckLM names and
    case-insensitive for Claude Code names; `mcp__…` tools and unknown names go to `unknown`."""
    by_lower = {name.lower(): targets for name, targets in CLAUDE_CODE_TOOLS.items()}
    tools: list[str] = []
    unknown: list[str] = []
    for entry in names:
        patterned = _PATTERNED.match(entry)
        base = patterned.group(1) if patterned else entry
        if base in BUILT_IN_TOOLS:
            tools.append(base)
        elif base.lower() in by_lower:
            tools.extend(by_lower[base.lower()])
        else:
            unknown.append(entry)
    return ToolMapping(tools=tuple(dict.fromkeys(tools)), unknown=tuple(dict.fromkeys(unknown)))
