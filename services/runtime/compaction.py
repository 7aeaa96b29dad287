"""Compaction: when a task's prompt nears the context window, older events are summarised by
the model and the summary stands in for them. Recorded as a `context_compacted` event, so it
is explicit and replayable; nothing is ever cut silently."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from services.runtime import events as ev
from services.runtime.context import RESULT_CHARS
from services.runtime.model_client import ChatModel, ModelCall
from services.runtime.store import EventRecord

__all__ = ["SUMMARY_SCHEMA", "summarise"]

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"summary": {"type": "string", "minLength": 1, "maxLength": 1500}},
    "required": ["summary"],
    "additionalProperties": False,
}

_INSTRUCTION = (
    "Summarise this conversation between a user and an assistant for the assistant's own later use. "
    "Keep facts, decisions, file names and results. Reply with JSON: {\"summary\": \"...\"}"
)


def transcript(events: Sequence[EventRecord]) -> str:
    lines = []
    for event in events:
        if isinstance(event.payload, ev.UserMessage | ev.AssistantMessage):
            lines.append(f"{event.type.split('_')[0]}: {event.payload.text}")
        elif event.type in ("directive", "tool_result", "memory_recalled", "skill_used", "context_compacted"):
            lines.append(f"{event.type}: {json.dumps(event.data, ensure_ascii=False)[:RESULT_CHARS // 4]}")
    return "\n".join(lines)


async def summarise(models: ChatModel, role: str, events: Sequence[EventRecord]) -> tuple[str, str, ModelCall]:
    """Returns (summary, method, call). If the model's summary is unusable, an extract of the
    transcript is used instead and the method says so."""
    text = transcript(events)
    call = await models.chat(
        role,
        [{"role": "system", "content": _INSTRUCTION}, {"role": "user", "content": text}],
        json_schema=SUMMARY_SCHEMA,
    )
    try:
        summary = str(json.loads(call.text)["summary"]).strip()
    except (json.JSONDecodeError, KeyError, TypeError):
        summary = ""
    if summary:
        return summary, "model", call
    return text[-1500:], "extract", call
