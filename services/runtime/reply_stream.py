"""Pulls the user-visible message out of a directive while the model is still writing it.

The model streams JSON such as `{"action": "respond", "message": "Hel` — a client wants only
`Hel`. `ReplyExtractor` is fed raw deltas and returns the decoded message characters they add.

It works in time linear in the output: it keeps only the few characters it has not been able
to decide yet (a key split across deltas, an escape cut in half), never the whole output, and
never scans a character twice. It must never raise on what a model writes: malformed escapes are
passed through as text and lone surrogates become U+FFFD.
"""

from __future__ import annotations

import json
from typing import Literal

__all__ = ["ReplyExtractor"]

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")
_REPLACEMENT = "\ufffd"

Phase = Literal["key", "colon", "value", "done"]


class ReplyExtractor:
    """Incremental: finds the `"message"` key, then decodes its string value as it arrives."""

    def __init__(self, field: str = "message") -> None:
        self._key = json.dumps(field)
        # Characters not decided yet: at most len(key) - 1 while looking for the key, at most
        # one escape sequence (12 characters) while decoding the value.
        self._pending = ""
        self._phase: Phase = "key"

    @property
    def buffered(self) -> int:
        """Characters held back, waiting for the next delta (never more than a key or an escape)."""
        return len(self._pending)

    def feed(self, delta: str) -> str:
        if self._phase == "done" or not delta:
            return ""
        text = self._pending + delta
        self._pending = ""
        if self._phase == "key":
            found = text.find(self._key)
            if found < 0:
                # Keep only what could still be the start of the key.
                self._pending = text[-(len(self._key) - 1) :]
                return ""
            text = text[found + len(self._key) :]
            self._phase = "colon"
        if self._phase == "colon":
            text = text.lstrip(" \t\r\n:")
            if not text:
                return ""
            if text[0] != '"':
                self._phase = "done"  # not a string value; nothing to stream
                return ""
            text = text[1:]
            self._phase = "value"
        return self._decode(text)

    def _decode(self, text: str) -> str:
        out: list[str] = []
        index, end = 0, len(text)
        # The next quote and backslash at or after `index`, each found again only once passed,
        # so every character is scanned once.
        quote = slash = -1
        while index < end:
            if quote < index:
                quote = _find(text, '"', index)
            if slash < index:
                slash = _find(text, "\\", index)
            # Copy the run of plain characters up to the next quote or backslash in one slice.
            stop = min(quote, slash)
            if stop > index:
                out.append(text[index:stop])
                index = stop
            if index >= end:
                break
            if text[index] == '"':
                self._phase = "done"
                break
            consumed, decoded = _escape(text, index)
            if consumed == 0:
                self._pending = text[index:]  # an escape cut in half: wait for the rest
                break
            out.append(decoded)
            index += consumed
        return "".join(out)


def _escape(text: str, index: int) -> tuple[int, str]:
    """Decodes the escape at `text[index]` (a backslash): (characters consumed, text), or
    (0, "") when the escape is not complete yet."""
    if index + 1 >= len(text):
        return 0, ""
    code = text[index + 1]
    if code != "u":
        return 2, _ESCAPES.get(code, code)
    unit = _hex4(text, index + 2)
    if unit is None:
        if index + 6 > len(text) and all(c in _HEX for c in text[index + 2 :]):
            return 0, ""
        return 2, "u"  # a malformed \u escape: keep the text, never fail
    if 0xD800 <= unit < 0xDC00:
        # A high surrogate: JSON writes characters beyond the BMP as a \uXXXX pair.
        tail = text[index + 6 : index + 12]
        may_follow = tail == "\\u"[: len(tail)] or tail.startswith("\\u")
        if len(tail) < 6 and may_follow and all(c in _HEX for c in tail[2:]):
            return 0, ""
        low = _hex4(text, index + 8) if tail.startswith("\\u") else None
        if low is not None and 0xDC00 <= low < 0xE000:
            return 12, chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
        return 6, _REPLACEMENT
    if 0xDC00 <= unit < 0xE000:
        return 6, _REPLACEMENT  # a low surrogate on its own
    return 6, chr(unit)


def _find(text: str, char: str, start: int) -> int:
    found = text.find(char, start)
    return len(text) if found < 0 else found


def _hex4(text: str, start: int) -> int | None:
    digits = text[start : start + 4]
    if len(digits) != 4 or not all(c in _HEX for c in digits):
        return None
    return int(digits, 16)
