"""Skill bodies and skill files shown to the model in parts that fit its context.

A body or file over its token budget is cut at line breaks into parts of about that size; the
model sees one part at a time, with the `read_skill_file` action that opens the next part or any
other file of the skill (the third level of progressive disclosure). The events keep only the
part shown, so a 40 KB skill costs the prompt one part, never the whole text. Nothing here calls
a service: the loop fetches, this module cuts and renders.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.runtime.events import SkillUsed
from services.runtime.skill_catalogue import TokenCounter, estimate_text_tokens

__all__ = ["SKILL_FILE", "Part", "cut_part", "render_skill_event"]

SKILL_FILE = "SKILL.md"
# Files named in the body's footer; the rest are counted.
LISTED_FILES = 30

Part = tuple[str, int, int]  # (text of the part, its number from 1, the number of parts)


async def cut_part(text: str, part: int, budget_tokens: int, count: TokenCounter | None) -> Part:
    """Part `part` (from 1; clamped to the last) of `text`, cut so each part fits `budget_tokens`."""
    total = await _count(text, count)
    if total <= budget_tokens:
        return text, 1, 1
    # Characters per part from the text's own ratio, with a margin for uneven lines.
    size = max(200, int(len(text) * budget_tokens / total * 0.9))
    bounds = _cut(text, size)
    number = min(max(part, 1), len(bounds))
    start, end = bounds[number - 1]
    return text[start:end], number, len(bounds)


def render_skill_event(used: SkillUsed) -> str:
    """The user-message text for a `skill_used` event: a body part, or a part of one file."""
    skill = used.skill
    if used.error:
        what = f"File {used.file} of skill {skill}" if used.file else f"Skill {skill}"
        return f"{what} could not be loaded: {used.error}"
    part, parts = used.part or 1, used.parts or 1
    path = used.file or SKILL_FILE
    if used.file:
        head = f"File {path} of skill {skill}"
    else:
        head = f"Instructions of skill {skill}"
    if parts > 1:
        head += f" (part {part} of {parts})"
    lines = [f"{head}:", used.body or ""]
    if part < parts:
        lines.append(
            f"[{parts - part} more part(s): "
            f'{{"action": "read_skill_file", "skill": "{skill}", "path": "{path}", "part": {part + 1}}}]'
        )
    files: Sequence[str] = used.files or ()
    if files and not used.file:
        shown = ", ".join(files[:LISTED_FILES])
        more = f" and {len(files) - LISTED_FILES} more" if len(files) > LISTED_FILES else ""
        lines.append(
            f"[Files of this skill: {shown}{more}. Open one with "
            f'{{"action": "read_skill_file", "skill": "{skill}", "path": "<file>", "part": 1}}]'
        )
    return "\n".join(lines)


async def _count(text: str, count: TokenCounter | None) -> int:
    if count is None:
        return estimate_text_tokens(text)
    try:
        return await count(text)
    except Exception:  # noqa: BLE001 - a tokenizer failure falls back to the estimate
        return estimate_text_tokens(text)


def _cut(text: str, size: int) -> list[tuple[int, int]]:
    """(start, end) of consecutive parts of about `size` characters, ending at a line break when
    one lies in the part's second half."""
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            newline = text.rfind("\n", start + size // 2, end)
            if newline != -1:
                end = newline + 1
        bounds.append((start, end))
        start = end
    return bounds
