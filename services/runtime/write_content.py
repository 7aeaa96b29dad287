"""What a file write should hold, read from the request itself.

A request to write says what to write: "a file that says hello world", "save the text 'call the
bank'", "with the line: Dana moved to Friday", "containing: eggs, bread". A small model asked to
type that into a JSON string often writes something else. So the runtime lifts the candidates
out of the request's own words, and the model only picks among them. To add a line to a file
the turn has read, the candidates are the file as it was with the line added, in the file's own
list style. Where the request states no text, there are no candidates and the model writes
freely. Pure functions; nothing here calls a model.
"""

from __future__ import annotations

import re

from services.runtime.grounding import BULLET

__all__ = ["MAX_CHOICES", "stated_texts", "write_choices"]

MAX_CHOICES = 6
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"|‘([^’]+)’|“([^”]+)”")
_STATED = re.compile(
    r"\b(?:says?|saying|contains?|containing|reads?|reading|with\s+the\s+(?:text|line|words?|content)|"
    r"with\s+the\s+following|that\s+has|holding)\s*:?\s+(.+)$",
    re.IGNORECASE,
)
_AFTER_COLON = re.compile(r":\s*(.+)$")


def _clean(text: str) -> str:
    text = text.strip()
    # A sentence's own full stop is the request's, not the text's (unless it is all there is).
    if text.endswith(".") and not text.endswith("..") and len(text) > 1:
        text = text[:-1].rstrip()
    return text


def stated_texts(request: str) -> list[str]:
    """The texts the request says to write, most explicit first: quoted, then after 'says' and
    its like, then after a colon."""
    found = [next(group for group in match.groups() if group) for match in _QUOTED.finditer(request)]
    for pattern in (_STATED, _AFTER_COLON):
        match = pattern.search(request)
        if match:
            found.append(match.group(1))
    texts: list[str] = []
    for text in (_clean(item) for item in found):
        if text and text not in texts:
            texts.append(text)
    return texts[:MAX_CHOICES]


def write_choices(request: str, current: str | None = None) -> list[str]:
    """The contents a write may have: the stated texts, or with `current` (the file as the
    turn read it), that file with each stated text added as a last line in its own style."""
    texts = stated_texts(request)
    if current is None:
        return texts
    lines = current.splitlines()
    last = lines[-1] if lines else ""
    bullet = BULLET.match(last)
    kept = current if current.endswith("\n") or not current else current + "\n"
    choices = []
    for text in texts:
        line = (bullet.group(1) + text) if bullet and not BULLET.match(text) else text
        choices.append(kept + line + "\n")
    return choices[:MAX_CHOICES]
