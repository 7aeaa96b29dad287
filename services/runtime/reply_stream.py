"""Pulls the user-visible message out of a directive while the model is still writing it.

The model streams JSON such as `{"action": "respond", "message": "Hel` — a client wants only
`Hel`. `ReplyExtractor` is fed raw deltas and returns the decoded message characters they add.
"""

from __future__ import annotations

import json

__all__ = ["ReplyExtractor"]

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class ReplyExtractor:
    """Incremental: finds the `"message"` key at the top level, then decodes its string value."""

    def __init__(self, field: str = "message") -> None:
        self._key = json.dumps(field)
        self._buffer = ""
        self._start: int | None = None  # index just after the value's opening quote
        self._pos = 0
        self._done = False

    def feed(self, delta: str) -> str:
        self._buffer += delta
        if self._done:
            return ""
        if self._start is None and not self._find_value_start():
            return ""
        return self._decode()

    def _find_value_start(self) -> bool:
        key_at = self._buffer.find(self._key)
        if key_at < 0:
            return False
        index = key_at + len(self._key)
        while index < len(self._buffer) and self._buffer[index] in " \t\r\n:":
            index += 1
        if index >= len(self._buffer):
            return False
        if self._buffer[index] != '"':
            self._done = True  # not a string value; nothing to stream
            return False
        self._start = self._pos = index + 1
        return True

    def _decode(self) -> str:
        out: list[str] = []
        buffer, index = self._buffer, self._pos
        while index < len(buffer):
            char = buffer[index]
            if char == '"':
                self._done = True
                index += 1
                break
            if char != "\\":
                out.append(char)
                index += 1
                continue
            if index + 1 >= len(buffer):
                break  # wait for the escaped character
            code = buffer[index + 1]
            if code == "u":
                if index + 6 > len(buffer):
                    break
                try:
                    unit = int(buffer[index + 2 : index + 6], 16)
                except ValueError:
                    out.append(buffer[index : index + 6])
                    index += 6
                    continue
                if 0xD800 <= unit < 0xDC00:
                    # A high surrogate: JSON writes characters beyond the BMP as a \uXXXX pair.
                    if index + 12 > len(buffer):
                        break
                    if buffer[index + 6 : index + 8] == "\\u":
                        low = int(buffer[index + 8 : index + 12], 16)
                        if 0xDC00 <= low < 0xE000:
                            out.append(chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)))
                            index += 12
                            continue
                out.append(chr(unit))
                index += 6
            else:
                out.append(_ESCAPES.get(code, code))
                index += 2
        self._pos = index
        return "".join(out)
