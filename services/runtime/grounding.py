"""Grounding: the runtime, not the model, finds the part of a result that answers the request.

A 135M model does not search a result for the fact it was asked for, and it does not count: it
copies, and mostly the nearest line. Shown a whole file, it repeats its last line whatever was
asked. So the runtime does the looking:
- `relevant_lines`: the lines of a file or an output that answer the request (those sharing
  most words with it, the Nth line or item asked for, the table row with the most or least of
  something, with its column names). The transcript shows these in place of the whole result.
- `result_note`: one line under a result with what the runtime computed exactly: a count of
  lines, items, rows or words; a folder's names; what a search found.
- `exact_answer`: where that note is itself the whole answer, the reply.

All are pure functions of the request and the result, so a transcript rendered again from the
log is the same text; the whole result stays in the event. Nothing here calls a model.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BULLET", "MAX_NOTE_CHARS", "exact_answer", "relevant_lines", "result_note"]

MAX_NOTE_CHARS = 300
# A command's output up to this many lines is given as the reply to running it.
COMMAND_ANSWER_LINES = 8
NAMES_SHOWN = 20

# Words a request is made of that say nothing about what is looked for in a result.
_FILLER = frozenset(
    [
        "a", "about", "according", "all", "an", "and", "any", "anything", "are", "as", "at", "be", "can",
        "could", "content", "contents", "did", "do", "does", "each", "file", "files", "find", "for", "from",
        "give", "has", "have", "here", "how", "i", "in", "into", "is", "it", "its", "just", "let", "look",
        "me", "my", "of", "on", "one", "open", "or", "out", "output", "please", "read", "say", "says", "see",
        "set", "show", "so", "tell", "that", "the", "their", "them", "then", "there", "this", "to", "use",
        "using", "was", "what", "when", "where", "which", "who", "whose", "why", "with", "would", "you",
        "your", "line", "lines", "item", "items", "row", "rows", "word", "words", "entry", "entries",
        "folder", "folders", "directory", "command", "run", "sentence", "short", "summary", "summarise",
        "summarize", "quick", "brief", "list",
    ]
)
# A version or a decimal ("1.4.0", "2.5") is one word; other words are runs of letters and digits.
_WORD = re.compile(r"\d+(?:\.\d+)+|[a-z0-9]+")
# A path or a file name in the request: every line of that file is "in" it, so it matches nothing.
_PATHLIKE = re.compile(r"[\w.-]*/[\w./-]+|[\w-]+\.[a-z][a-z0-9]{0,5}\b")
# A list item's marker ("- ", "* ", "1. "), as group 1.
BULLET = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+)")
# What a count may be of, and what it counts: a list's things, tasks or points are its items.
_COUNT_UNITS = {"line": "lines", "item": "items", "row": "rows", "word": "words", "entry": "entries",
                "file": "files", "thing": "items", "task": "items", "point": "items", "element": "items",
                "bullet": "items"}
# What a folder listing can count.
_ENTRY_UNITS = frozenset(["file", "entry", "entrie", "folder", "directorie", "subfolder"])
_COUNTING = re.compile(
    r"\b(?:how\s+many|count(?:\s+the)?|number\s+of)\s+(?:\w+\s+){0,2}?"
    r"(lines?|items?|rows?|words?|entries|entry|files?|things?|tasks?|points?|elements?|bullets?|folders?|"
    r"directories|subfolders?)\b"
)
_ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1}
_ORDINAL = re.compile(r"\b(first|second|third|fourth|fifth|last)\s+(?:\w+\s+)?(line|item|row|entry)\b")
_MOST = frozenset(["most", "highest", "largest", "biggest", "maximum", "max", "top", "best"])
_LEAST = frozenset(["least", "lowest", "smallest", "fewest", "minimum", "min", "worst"])


@dataclass(frozen=True)
class _Text:
    """A textual result: its non-blank lines, and where it came from (for the count's wording)."""

    lines: list[str]
    source: str
    is_table: bool


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _stems(text: str) -> set[str]:
    return {_stem(word) for word in _WORD.findall(text.lower())}


def _asked_words(request: str) -> set[str]:
    """The request's own words: no filler, no file names (every line of a file is 'in' it)."""
    lowered = _PATHLIKE.sub(" ", request.lower())
    return {_stem(word) for word in _WORD.findall(lowered) if word not in _FILLER and len(word) > 1}


def _clip(note: str) -> str:
    note = " ".join(note.split())
    return note if len(note) <= MAX_NOTE_CHARS else note[: MAX_NOTE_CHARS - 1].rstrip() + "…"


def _text_of(result: dict[str, Any]) -> _Text | None:
    if isinstance(result.get("content"), str):
        text, source = str(result["content"]), str(result.get("path") or "the file")
    elif isinstance(result.get("stdout"), str) and result["stdout"].strip():
        text, source = str(result["stdout"]), "the output"
    else:
        return None
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    commas = {line.count(",") for line in lines}
    return _Text(lines, source, is_table=source.lower().endswith(".csv") and len(commas) == 1 and 0 not in commas)


def _count_note(request: str, text: _Text) -> str | None:
    match = _COUNTING.search(request.lower())
    if match is None:
        return None
    if match.group(1).rstrip("s") in ("folder", "directorie", "subfolder"):
        return None  # a file holds no folders: a listing counts those
    unit = _COUNT_UNITS.get(match.group(1).rstrip("s"), match.group(1))
    if unit == "entries":
        unit = "lines"
    if unit == "items":
        bullets = [line for line in text.lines if BULLET.match(line)]
        counted = len(bullets) if bullets else len(text.lines)
    elif unit == "rows" and text.is_table:
        counted = len(text.lines) - 1
    elif unit == "words":
        counted = sum(len(line.split()) for line in text.lines)
    else:
        unit, counted = "lines", len(text.lines)
    return f"Count: {text.source} has {_plural(counted, unit.removesuffix('ies') + 'y' if unit == 'entries' else unit.rstrip('s'))}."


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def _row(text: _Text, line: str) -> str:
    """A table row with its column names, so 'blender' reads as the product."""
    if not text.is_table:
        return BULLET.sub("", line).strip()
    header, values = next(csv.reader([text.lines[0]])), next(csv.reader([line]))
    return ", ".join(f"{name.strip()}: {value.strip()}" for name, value in zip(header, values, strict=False))


def _ordinal_lines(request: str, text: _Text) -> list[str] | None:
    match = _ORDINAL.search(request.lower())
    if match is None:
        return None
    candidates = text.lines
    if match.group(2) == "item":
        candidates = [line for line in text.lines if BULLET.match(line)] or text.lines
    elif match.group(2) == "row" and text.is_table:
        candidates = text.lines[1:]
    index = _ORDINALS[match.group(1)]
    if not candidates or index >= len(candidates):
        return None
    return [_row(text, candidates[index])]


def _extreme_lines(request: str, text: _Text) -> list[str] | None:
    """For 'which sold the most', the table row with the highest number in the column asked
    about (or the last numeric column)."""
    words = set(_WORD.findall(request.lower()))
    most, least = bool(words & _MOST), bool(words & _LEAST)
    if not text.is_table or most == least or len(text.lines) < 3:
        return None
    header = [name.strip().lower() for name in next(csv.reader([text.lines[0]]))]
    rows = [next(csv.reader([line])) for line in text.lines[1:]]

    def number(row: list[str], column: int) -> float | None:
        try:
            return float(row[column].strip()) if column < len(row) else None
        except ValueError:
            return None

    numeric = [column for column in range(len(header)) if all(number(row, column) is not None for row in rows)]
    if not numeric:
        return None
    asked = _asked_words(request)
    column = next((c for c in numeric if _stem(header[c]) in asked), numeric[-1])
    chosen = (max if most else min)(rows, key=lambda row: number(row, column) or 0.0)
    return [_row(text, ",".join(chosen))]


def _matches(word: str, asked: set[str]) -> bool:
    """The same word, or one a plural or a verb ending away ('kettle' and 'kettles')."""
    return word in asked or any(
        min(len(word), len(other)) >= 4 and abs(len(word) - len(other)) <= 2
        and (word.startswith(other) or other.startswith(word))
        for other in asked
    )


def _best_lines(request: str, text: _Text) -> list[str] | None:
    """The line sharing most of the request's words, a word counting less the more lines hold
    it; a line and the one after it count together, so a function's name and its body are found
    as one."""
    # The file's own name says what every line is about ("pancakes" in pancakes.md): not a clue.
    asked = _asked_words(request) - _stems(text.source.replace("/", " ").replace(".", " "))
    lines = text.lines[1:] if text.is_table else text.lines
    if not asked or not lines:
        return None
    own = [{word for word in _stems(line) if _matches(word, asked)} for line in lines]
    holding: dict[str, int] = {}
    for words in own:
        for word in words:
            holding[word] = holding.get(word, 0) + 1

    def weight(words: set[str]) -> float:
        return sum(1.0 / holding[word] for word in words)

    best, best_score = -1, 0.0
    for index in range(len(lines)):
        following = own[index + 1] if index + 1 < len(lines) else set()
        score = weight(own[index]) * 2 + weight(following - own[index])
        if own[index] and score > best_score:
            best, best_score = index, score
    if best < 0:
        return None
    shown = [_row(text, lines[best])]
    # The line after joins it where it adds words asked for, or where the line found is a
    # heading or a label ("## 1.4.0", "Ingredients:"), whose content is what comes under it.
    heading = lines[best].lstrip().startswith("#") or lines[best].rstrip().endswith(":")
    if best + 1 < len(lines) and (own[best + 1] - own[best] or heading) and not text.is_table:
        shown.append(_row(text, lines[best + 1]))
    return shown


def _names_note(request: str, names: Sequence[str], label: str) -> str | None:
    if not names:
        return None
    if re.search(r"\b(folders?|directories|directory|subfolders?)\b", request.lower()):
        folders = [name for name in names if name.endswith("/")]
        if folders:
            names, label = folders, "Folders"
    shown = ", ".join(names[:NAMES_SHOWN]) + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")
    return f"{label}: {shown}"


def result_note(request: str, result: dict[str, Any]) -> str | None:
    """The note for one successful tool result, or None where it would add nothing."""
    entries = result.get("entries")
    if isinstance(entries, list):
        names = [f"{entry.get('name', '')}{'/' if entry.get('type') in ('dir', 'directory') else ''}"
                 for entry in entries if isinstance(entry, dict)]
        counting = _COUNTING.search(request.lower())
        # A folder's count is of its files and folders; "how many items on my list" is not one.
        if counting and counting.group(1).rstrip("s") in _ENTRY_UNITS and names:
            folders = sum(name.endswith("/") for name in names)
            where = str(result.get("path") or ".")
            where = "the workspace" if where in (".", "") else where
            return f"Count: {where} has {_plural(len(names) - folders, 'file')} and {_plural(folders, 'folder')}."
        return _clip(note) if (note := _names_note(request, names, "Names")) else None
    if isinstance(result.get("matches"), list):
        found = [str(match) for match in result["matches"]]
        return _clip(note) if (note := _names_note(request, found, "Found")) else None
    text = _text_of(result)
    count = _count_note(request, text) if text is not None else None
    return _clip(count) if count else None


def relevant_lines(request: str, result: dict[str, Any]) -> list[str] | None:
    """The lines of a file or a command's output that answer the request, each cut to
    MAX_NOTE_CHARS; None where none stands out (the whole result is then what to look at)."""
    text = _text_of(result)
    if text is None or _COUNTING.search(request.lower()):
        return None
    for find in (_ordinal_lines, _extreme_lines, _best_lines):
        if (lines := find(request, text)) is not None:
            return [_clip(line) for line in lines]
    return None


def _where(result: dict[str, Any]) -> str:
    path = str(result.get("path") or ".")
    return "Your workspace" if path in (".", "") else f"The folder {path}"


def _printed(result: dict[str, Any]) -> str | None:
    """A command's short output on one line, as the reply to running it."""
    if not isinstance(result.get("stdout"), str) or result.get("exit_code") not in (0, None):
        return None
    lines = [line.strip() for line in str(result["stdout"]).splitlines() if line.strip()]
    joined = "; ".join(lines)
    if not lines or len(lines) > COMMAND_ANSWER_LINES or len(joined) > MAX_NOTE_CHARS:
        return None
    argv = result.get("argv")
    command = " ".join(str(part) for part in argv) if isinstance(argv, list) and argv else "The command"
    return f"`{command}` printed: {joined}" if command != "The command" else f"The command printed: {joined}"


def exact_answer(request: str, result: dict[str, Any]) -> str | None:
    """The reply where the result itself is the whole answer, computed exactly (a count, a
    folder's names, what a search found, a command's short output where no line of it stands
    out): the model would only lose facts rephrasing it. None where the answer needs words of
    the model's (a line that holds a fact, a summary)."""
    note = result_note(request, result)
    if note is None:
        return _printed(result) if relevant_lines(request, result) is None else None
    label, _, rest = note.partition(": ")
    if label == "Count":
        return rest
    if label == "Names":
        return f"{_where(result)} holds: {rest}."
    if label == "Folders":
        return f"{_where(result)} holds these folders: {rest}."
    if label == "Found":
        return f"I found: {rest}."
    return None
