"""Makes what a model writes safe to store, stream and parse: the one gate for model text.

`sanitize` replaces code points that cannot be encoded (lone surrogates, which JSON's `\\ud800`
escapes produce) with U+FFFD; `load_model_json` parses a directive with its size and nesting
depth bounded and every string in the result sanitised. Neither ever raises anything but
`ModelJSONError`, whose message is a reason fit for an `invalid_directive` repair prompt.
Nothing here calls a model, a service or the store.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_JSON_CHARS", "MAX_JSON_DEPTH", "ModelJSONError", "clip", "load_model_json", "sanitize"]

# The largest directive parsed, in characters; a step's schema admits far less.
MAX_JSON_CHARS = 256_000
# The deepest nesting of arrays and objects parsed; a directive needs a handful of levels.
MAX_JSON_DEPTH = 32

# In a Python str every surrogate code point stands alone (pairs decode to one code point).
_SURROGATE = re.compile("[\ud800-\udfff]")
# What can open or close a level, or start/end a string, in JSON text.
_STRUCTURE = re.compile(r'["\\\[\]{}]')


class ModelJSONError(ValueError):
    """The model's output cannot be parsed as a directive; the message says why."""


def sanitize(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD; the same object when there is none."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def clip(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, saying how many were left out."""
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def load_model_json(text: str, *, max_chars: int = MAX_JSON_CHARS, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parses `text` as JSON with bounded size and depth; strings in the result are sanitised."""
    if len(text) > max_chars:
        raise ModelJSONError(f"output is {len(text)} characters long, more than the {max_chars} a directive may have")
    depth = _depth(text)
    if depth > max_depth:
        raise ModelJSONError(f"output nests arrays or objects {depth} deep, more than the {max_depth} allowed")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = sanitize(clip(text, 80))
        raise ModelJSONError(f"output is not JSON ({exc.msg} at char {exc.pos}): {snippet!r}") from None
    except (ValueError, RecursionError) as exc:  # e.g. a number with too many digits
        raise ModelJSONError(f"output is not usable JSON: {exc}") from None
    return _clean(value)


def _depth(text: str) -> int:
    """The deepest nesting in `text`, ignoring brackets inside strings; one linear scan."""
    depth = deepest = 0
    in_string = False
    escape_at = -2  # where the last backslash inside a string was
    for match in _STRUCTURE.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at == escape_at + 1:
                continue  # the character a backslash escapes
            if char == "\\":
                escape_at = at
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _clean(value: Any) -> Any:
    """Sanitises every string (keys too); the depth was bounded before, so recursion is safe."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {sanitize(key): _clean(item) for key, item in value.items()}
    return value
