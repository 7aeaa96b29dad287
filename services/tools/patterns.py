"""Pattern grants: what "allow this kind of command here" covers, spelled out and hashed.

A run_command call's pattern is its argv with the program, the subcommand (for programs the
policy gives subcommands) and every option kept literally, in place, and each run of operands
(arguments that are not options, and everything after `--`) replaced by `PATHS...`; plus its
working directory, its other arguments (e.g. `timeout_seconds`) and the policy version. So
`git log --oneline src/a.py` and `git log --oneline docs` share the pattern
`git log --oneline PATHS...`, while `git log -p src/a.py`, `git show src/a.py` or
`sort -o out.txt in.txt` (its own pattern) do not.

An option's separate value (`-n 5`, `-t dir`) counts as an operand: what any value may do is
bounded by the policy, which allows no option that runs a program and checks every argument
that could be a path. A glued value (`--output=x`, `-ox`) is part of the option, so it is fixed.

A grant for a pattern never widens what the policy allows: every call it covers is still
checked in full (workspace paths only, no link out, no protected path written). On top of
that, a call with any operand naming a protected path, or a path that cannot be placed inside
the workspace, is not covered: it needs an exact approval.

This module only computes and compares patterns; it never runs or approves anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.errors import DuckLMError
from services.tools.canonical import canonical_json
from services.tools.workspace import show

__all__ = ["OPERANDS", "Pattern", "pattern_of"]

# What stands for one or more operands in a pattern.
OPERANDS = "PATHS..."


@dataclass(frozen=True)
class Pattern:
    """One run_command pattern: its text for the approver, its identity, and the call's operands."""

    text: str
    hash: str
    operands: tuple[str, ...]
    # Whether the call's operands stay clear of protected paths (else no pattern grant covers it).
    clear_of_protected: bool


def _shape(argv: Sequence[str], literal_prefix: int) -> tuple[list[str], list[str]]:
    """The argv with operand runs collapsed, and the operands themselves."""
    shape = list(argv[:literal_prefix])
    operands: list[str] = []
    after_dashes = False
    for arg in argv[literal_prefix:]:
        if not after_dashes and arg == "--":
            after_dashes = True
            shape.append(arg)
            continue
        if not after_dashes and arg.startswith("-") and arg != "-":
            shape.append(arg)
            continue
        operands.append(arg)
        if not shape or shape[-1] != OPERANDS:
            shape.append(OPERANDS)
    return shape, operands


def pattern_of(
    arguments: dict[str, Any],
    *,
    has_subcommands: bool,
    cwd: str,
    display_cwd: str,
    policy_version: str,
    is_protected: Callable[[str], bool],
) -> Pattern:
    """The pattern of a run_command call (`arguments` canonical, already checked by the policy).

    `is_protected(operand)` says whether an operand names a protected path; it raises a
    DuckLMError for a path it cannot place inside the workspace (then the call is not covered).
    """
    argv: list[str] = list(arguments["argv"])
    literal = 2 if has_subcommands and len(argv) > 1 else 1
    shape, operands = _shape(argv, literal)
    others = {key: value for key, value in arguments.items() if key not in ("argv", "cwd")}
    identity = canonical_json(
        {
            "arguments": others,
            "kind": "run_command pattern",
            "policy_version": policy_version,
            "shape": shape,
            "working_directory": cwd,
        }
    )
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()
    extras = "".join(f", {key}={value}" for key, value in sorted(others.items()))
    text = f"run_command in {show(display_cwd)}: {' '.join(show(part) for part in shape)}{extras}"
    try:
        clear = not any(is_protected(operand) for operand in operands)
    except DuckLMError:
        clear = False
    return Pattern(text=text, hash=digest, operands=tuple(operands), clear_of_protected=clear)
