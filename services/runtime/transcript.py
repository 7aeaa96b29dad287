"""The staged decision's prompt: a task written as one plain transcript that only ever grows.

    <system prompt, the steps on offer, skills, worked examples>
    Request: What day is the meeting? Check notes.txt.
    Next step: read_file
    Arguments: {"path": "notes.txt"}
    Result:
      The meeting is on Thursday.
    Next step: answer
    Answer: The meeting is on Thursday.

A small model continues such a document far better than it follows chat instructions, and since
each stage only appends to it, llama-server's prompt cache serves everything before the new
line. Results are indented under `Result:` and clipped, so the answer step sees them clearly
delimited and short. A pure function of the catalogue and the events; nothing here calls a model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.vocabulary import TURN_ENDING_ACTIONS
from services.runtime import events as ev
from services.runtime.context import INVALID_DIRECTIVE, REPEATED_CALL, compaction
from services.runtime.grounding import relevant_lines, result_note
from services.runtime.intents import asks_for_change
from services.runtime.prompts import ANSWER, DEMONSTRATIONS, WORKED_EXAMPLES, short_description
from services.runtime.store import EventRecord

__all__ = ["RELEVANT_HEADING", "RESULT_LINES_CHARS", "Header", "render_events", "render_header", "render_result"]

# The most characters of one result the transcript shows; the whole result is in the event.
RESULT_LINES_CHARS = 1500
SKILL_BODY_CHARS = 2000
MEMORY_CHARS = 300
RESULT_INDENT = "  "
# Over the lines of a result that answer the request, shown in place of the whole result.
RELEVANT_HEADING = "Result (the lines that answer it):"
# What each action's field is called on its line.
FIELD_LINES = {"remember": ("Fact", "text"), "recall": ("Query", "query"), "use_skill": ("Skill", "skill")}


@dataclass(frozen=True)
class Header:
    system_prompt: str
    steps: tuple[tuple[str, str], ...]
    skills: tuple[tuple[str, str], ...] = ()


def render_header(header: Header) -> str:
    offered = {name for name, _ in header.steps}
    lines = [header.system_prompt, "", "Steps:"]
    lines += [f"- {name}: {description}" for name, description in header.steps]
    if header.skills:
        lines += ["", "Skills:"] + [f"- {name}: {short_description(text, 140)}" for name, text in header.skills]
    lines += ["", "Examples:"]
    for demo in DEMONSTRATIONS:
        if demo.step in offered:
            lines += [f"Request: {demo.request}", f"Next step: {demo.step}"]
    for example in WORKED_EXAMPLES:
        if set(example.steps) <= offered:
            lines += ["", *example.lines]
    return "\n".join(lines) + "\n"


def _indent(text: str, limit: int) -> str:
    text = text.rstrip("\n")
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters)"
    return "\n".join(RESULT_INDENT + line for line in (text.splitlines() or ["(empty)"]))


def render_result(result: dict[str, Any]) -> str:
    """A tool's result as the text a person would look at: a file's content, a folder's names,
    a command's output; other results as compact JSON."""
    if isinstance(result.get("content"), str):
        return str(result["content"])
    if isinstance(result.get("entries"), list):
        names = []
        for entry in result["entries"]:
            if isinstance(entry, dict):
                suffix = "/" if entry.get("type") in ("dir", "directory") else ""
                names.append(f"{entry.get('name', '')}{suffix}")
        return "\n".join(names) or "(empty folder)"
    if isinstance(result.get("matches"), list):
        return "\n".join(str(match) for match in result["matches"]) or "(no match)"
    if "stdout" in result or "stderr" in result:
        output = str(result.get("stdout") or "")
        if result.get("stderr"):
            output += ("\n" if output else "") + str(result["stderr"])
        code = result.get("exit_code")
        return output + (f"\n(exit code {code})" if code not in (None, 0) else "")
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


def _directive_lines(directive: ev.Directive) -> list[str]:
    action = directive.action
    if action == "call_tool":
        arguments = json.dumps(directive.arguments or {}, ensure_ascii=False)
        return [f"Next step: {directive.tool or ''}", f"Arguments: {arguments}"]
    if action in TURN_ENDING_ACTIONS:
        return [f"Next step: {ANSWER}", f"Answer: {'' if directive.message is None else directive.message}"]
    label, key = FIELD_LINES.get(action, ("Value", ""))
    return [f"Next step: {action}", f"{label}: {directive.fields().get(key, '')}"]


def _result_lines(result: dict[str, Any], request: str) -> list[str]:
    """A result indented under `Result:`, and under it the note of what the runtime computed
    from it. Where some lines of a file answer the request, only those are shown: a small model
    copies the nearest line, so the nearest line must be the one that answers. (Not when the
    request asks for a change: rewriting a file needs all of it.)"""
    focus = None if asks_for_change(request) else relevant_lines(request, result)
    if focus:
        return [RELEVANT_HEADING, _indent("\n".join(focus), RESULT_LINES_CHARS)]
    lines = ["Result:", _indent(render_result(result), RESULT_LINES_CHARS)]
    note = result_note(request, result)
    return [*lines, note] if note else lines


def _event_lines(event: EventRecord, request: str) -> list[str]:
    payload = event.payload
    if isinstance(payload, ev.UserMessage):
        return ["", f"Request: {payload.text}"]
    if isinstance(payload, ev.Directive):
        return _directive_lines(payload)
    if isinstance(payload, ev.ToolResult):
        if payload.ok:
            return _result_lines(dict(payload.result), request)
        return [f"Error: {payload.error or 'the tool failed'}"]
    if isinstance(payload, ev.Error) and payload.code == INVALID_DIRECTIVE:
        return [f"Error: {payload.message}"]
    if isinstance(payload, ev.SkillUsed):
        if payload.error:
            return [f"Error: skill {payload.skill} could not be loaded: {payload.error}"]
        return ["Skill instructions:", _indent(payload.body or "", SKILL_BODY_CHARS)]
    if isinstance(payload, ev.MemoryRecalled):
        memories = payload.memories or ()
        if payload.error:
            return [] if payload.automatic else [f"Error: memory search failed: {payload.error}"]
        if not memories:
            return [] if payload.automatic else ["Result:", f"{RESULT_INDENT}(no memory matched)"]
        listed = "\n".join(memory.text[:MEMORY_CHARS] for memory in memories)
        return ["Memories:", _indent(listed, RESULT_LINES_CHARS)]
    if isinstance(payload, ev.MemoryStored):
        return [f"Error: {payload.error}"] if payload.error else ["Result:", f"{RESULT_INDENT}remembered"]
    return []


def _is_repeat(event: EventRecord) -> bool:
    return isinstance(event.payload, ev.Error) and event.payload.code == REPEATED_CALL


def render_events(events: Sequence[EventRecord]) -> str:
    """The task so far, after the header; a compaction's summary stands in for what it covers."""
    compacted = compaction(events)
    covered = compacted.up_to_seq if compacted is not None else 0
    lines = ["", f"Summary of the conversation so far: {compacted.summary}"] if compacted is not None and covered else []
    shown = [event for event in events if event.seq > covered]
    request = ""
    for index, event in enumerate(shown):
        following = shown[index + 1] if index + 1 < len(shown) else None
        if _is_repeat(event) or (following is not None and _is_repeat(following)):
            continue  # a repeated call was never run: the result above stands, unrepeated
        if isinstance(event.payload, ev.UserMessage):
            request = event.payload.text
        lines += _event_lines(event, request)
    return "\n".join(lines).lstrip("\n") + "\n"
