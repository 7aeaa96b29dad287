"""Glob patterns over workspace-relative paths: `*`, `?` and `[...]` within one path segment,
and `**` for any number of segments (zero included). Used by find_files and protected paths."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

__all__ = ["matches", "split_pattern"]


def split_pattern(pattern: str) -> list[str]:
    """The segments of `pattern`, without empty and `.` segments."""
    return [part for part in pattern.split("/") if part not in ("", ".")]


def matches(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether the path `parts` matches the pattern `pattern` (both as segment lists)."""
    memo: dict[tuple[int, int], bool] = {}

    def match(p: int, s: int) -> bool:
        key = (p, s)
        if key in memo:
            return memo[key]
        if p == len(pattern):
            result = s == len(parts)
        elif pattern[p] == "**":
            # Zero segments, or one more segment still under the same `**`.
            result = match(p + 1, s) or (s < len(parts) and match(p, s + 1))
        else:
            result = s < len(parts) and fnmatchcase(parts[s], pattern[p]) and match(p + 1, s + 1)
        memo[key] = result
        return result

    return match(0, 0)
