"""Builds the model's prompt for a step from the task's event log.

The prompt is a pure function of the catalogue and the stored events, rendered in log order,
so each step only appends to the previous prompt: the prefix stays byte-identical and
llama-server's prompt cache serves it. After a compaction, the summary stands in for every
event it covers. Nothing here calls a model or a service.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.vocabulary import TURN_ENDING_ACTIONS
from services.runtime import events as ev
from services.runtime.peers import SkillSummary
from services.runtime.skill_catalogue import catalogue_line
from services.runtime.skill_pages import render_skill_event
from services.runtime.store import EventRecord

__all__ = [
    "INVALID_DIRECTIVE", "REPEATED_CALL", "RESULT_CHARS", "Catalogue", "build_messages", "compaction",
    "estimate_tokens", "turn_start",
]

# The error code of a model output that is not a valid directive (a step that took no action).
INVALID_DIRECTIVE = "invalid_directive"
# The error code of a tool call the model repeated within a turn (it was not run again).
REPEATED_CALL = "repeated_call"
# The most characters of one tool result shown to the model; the full result is in the event.
RESULT_CHARS = 2000
# The most characters of an invalid output shown back to the model for repair; the full output
# is in the event, and a huge one must not fill the context it is asked to repair in.
INVALID_OUTPUT_CHARS = 2000
# The most characters of one recalled memory shown to the model; the full text is in the event.
MEMORY_CHARS = 500
# Where a recalled memory came from, so the model can tell the user's lasting facts from notes
# of this conversation.
_SCOPE_NOTES = {"task": " (noted earlier in this conversation)", "long_term": ""}

ACTION_GUIDE = {
    "respond": 'Reply to the user: {"action": "respond", "message": "..."}',
    "finish": 'Final answer when the task is done: {"action": "finish", "message": "..."}',
    "call_tool": 'Use a tool: {"action": "call_tool", "tool": "<name>", "arguments": {...}}',
    "use_skill": 'Load a skill\'s instructions: {"action": "use_skill", "skill": "<name>"}',
    "remember": 'Store a fact for later: {"action": "remember", "text": "..."}',
    "recall": 'Search your memory: {"action": "recall", "query": "..."}',
}


@dataclass(frozen=True)
class Catalogue:
    """What the model may use in this task: tools and skills, by name and description."""

    tools: tuple[tuple[str, str], ...] = ()
    skills: tuple[tuple[str, str], ...] = ()
    actions: tuple[str, ...] = TURN_ENDING_ACTIONS
    # Loaded skills not listed (unrelated to the request, or over the catalogue's token budget).
    skills_left_out: int = 0


def system_message(system_prompt: str, catalogue: Catalogue) -> str:
    lines = [system_prompt, "", "Actions:"]
    lines += [f"- {ACTION_GUIDE[action]}" for action in catalogue.actions if action in ACTION_GUIDE]
    if catalogue.tools:
        lines += ["", "Tools:"] + [f"- {name}: {description}" for name, description in catalogue.tools]
    if catalogue.skills:
        # Hook: skill_catalogue.catalogue_line renders (and clips) each skill's line.
        lines += ["", "Skills:"] + [catalogue_line(SkillSummary(name, description)) for name, description in catalogue.skills]
    if catalogue.skills_left_out:
        lines.append(f"({catalogue.skills_left_out} other skills are not listed: unrelated to this request or over the space for skills.)")
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def _compact_json(value: Any, limit: int = RESULT_CHARS) -> str:
    return _clip(json.dumps(value, ensure_ascii=False, separators=(",", ":")), limit)


def _render(event: EventRecord, tool_names: dict[str, str]) -> list[dict[str, str]]:
    payload = event.payload
    if isinstance(payload, ev.UserMessage):
        return [{"role": "user", "content": payload.text}]
    if isinstance(payload, ev.Directive):
        return [{"role": "assistant", "content": payload.raw}]
    if isinstance(payload, ev.Error) and payload.code == INVALID_DIRECTIVE:
        return [
            {"role": "assistant", "content": _clip(payload.output or "", INVALID_OUTPUT_CHARS)},
            {"role": "user", "content": f"That was not a valid action: {payload.message}. Reply with one JSON action."},
        ]
    if isinstance(payload, ev.ToolResult):
        tool = tool_names.get(payload.call_id, "the tool")
        if payload.ok:
            return [{"role": "user", "content": f"Result of {tool}: {_compact_json(payload.result)}"}]
        return [{"role": "user", "content": f"{tool} failed: {payload.error or 'unknown error'}"}]
    if isinstance(payload, ev.SkillUsed):
        # Hook: skill_pages.render_skill_event shows a body part or a file part, with how to read on.
        return [{"role": "user", "content": render_skill_event(payload)}]
    if isinstance(payload, ev.MemoryRecalled):
        memories = payload.memories or ()
        if payload.automatic and payload.error:
            return []  # stored in the log; not worth a small model's attention every turn
        if payload.error:
            return [{"role": "user", "content": f"Memory search failed: {payload.error}"}]
        if not memories:
            return [] if payload.automatic else [{"role": "user", "content": "No memories matched."}]
        listed = "\n".join(
            f"- {_clip(memory.text, MEMORY_CHARS)}{_SCOPE_NOTES.get(memory.scope, '')}" for memory in memories
        )
        return [{"role": "user", "content": f"Relevant memories:\n{listed}"}]
    if isinstance(payload, ev.MemoryStored):
        if payload.error:
            return [{"role": "user", "content": f"Could not remember that: {payload.error}"}]
        return [{"role": "user", "content": "Remembered for this conversation."}]
    return []


def compaction(events: Sequence[EventRecord]) -> ev.ContextCompacted | None:
    """The log's last compaction, whose summary stands in for every event up to its `up_to_seq`."""
    for event in reversed(events):
        if isinstance(event.payload, ev.ContextCompacted):
            return event.payload
    return None


def build_messages(system_prompt: str, catalogue: Catalogue, events: Sequence[EventRecord]) -> list[dict[str, str]]:
    """The chat messages for the next model call."""
    messages: list[dict[str, str]] = [{"role": "system", "content": system_message(system_prompt, catalogue)}]
    compacted = compaction(events)
    covered = compacted.up_to_seq if compacted is not None else 0
    if compacted is not None and covered:
        messages.append({"role": "user", "content": f"Summary of the conversation so far: {compacted.summary}"})
    tool_names: dict[str, str] = {}
    for event in events:
        if isinstance(event.payload, ev.ToolCall):
            tool_names[event.payload.call_id] = event.payload.tool
        if event.seq > covered:
            messages.extend(_render(event, tool_names))
    return messages


def estimate_tokens(messages: Sequence[dict[str, str]]) -> int:
    """A cautious token estimate (about 3 characters a token plus per-message overhead)."""
    return sum(len(message["content"]) // 3 + 4 for message in messages)


def turn_start(events: Sequence[EventRecord]) -> int:
    """The seq of the current turn's user message (0 if none)."""
    for event in reversed(events):
        if isinstance(event.payload, ev.UserMessage):
            return event.seq
    return 0

