"""Canonical JSON and the action hash: the identity an approval is bound to.

Canonical JSON has sorted keys, no insignificant whitespace and UTF-8 text (not escaped). A
protobuf Struct carries every number as a float, so whole-number floats become ints (1.0 -> 1):
the same action hashes the same whether it arrived as JSON or as a Struct. Nothing else is
normalised (no Unicode normalisation, no trimming): two strings that differ in one byte are two
different actions. NaN and infinities have no JSON form and are refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidArgument

__all__ = ["Action", "action_of", "canonical_json", "canonical_value"]

# Floats beyond this may not be whole numbers exactly representable as ints in every JSON reader.
_MAX_EXACT_INT = 2**53


def canonical_value(value: Any) -> Any:
    """`value` as plain JSON data with whole-number floats turned into ints.

    Raises InvalidArgument for values JSON cannot carry (NaN, infinities, non-string keys, ...).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument("arguments must not contain NaN or infinite numbers")
        if value.is_integer() and abs(value) <= _MAX_EXACT_INT:
            return int(value)
        return value
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgument("argument object keys must be strings")
            result[key] = canonical_value(item)
        return result
    if isinstance(value, (list, tuple)):
        return [canonical_value(item) for item in value]
    raise InvalidArgument(f"arguments must be JSON values, not {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of `value` (see the module docstring)."""
    return json.dumps(
        canonical_value(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


@dataclass(frozen=True)
class Action:
    """One exact action: what an approval covers and what the tools service runs."""

    tool_name: str
    arguments: dict[str, Any]
    working_directory: str
    policy_version: str
    canonical: str
    hash: str


def action_of(
    tool_name: str, arguments: dict[str, Any], working_directory: str, policy_version: str
) -> Action:
    """The action with its canonical JSON and SHA-256 (hex) identity."""
    args = canonical_value(arguments)
    text = canonical_json(
        {
            "arguments": args,
            "policy_version": policy_version,
            "tool": tool_name,
            "working_directory": working_directory,
        }
    )
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("arguments must be valid Unicode text (no lone surrogates)") from None
    digest = hashlib.sha256(encoded).hexdigest()
    return Action(tool_name, args, working_directory, policy_version, text, digest)
