"""How the command line shows things: one-line event summaries, tables, JSON."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, TextIO

from ducklm.common.v1 import common_pb2

from ducklm_client.convert import struct
from ducklm_client.models import Event

__all__ = ["compact_json", "event_line", "event_summary", "print_json", "table", "when"]


def compact_json(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: _jsonable(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def print_json(value: Any, out: TextIO) -> None:
    """One result (a dataclass or a list of them) as one JSON line."""
    out.write(json.dumps(_jsonable(value), ensure_ascii=False) + "\n")


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def event_summary(event: Event) -> str:
    """What an event says, in one line (read from its typed payload)."""
    match event.payload:
        case common_pb2.TaskCreated(message=text) | common_pb2.UserMessage(text=text):
            return text
        case common_pb2.StatusChanged() as changed:
            reason = f" ({changed.reason})" if changed.reason else ""
            return f"{getattr(changed, 'from')} → {changed.to}{reason}"
        case common_pb2.ModelCall(usage=usage) as call:
            return (
                f"{call.role} {call.model} {call.latency_ms:g} ms, "
                f"{usage.prompt_tokens} prompt ({usage.cached_prompt_tokens} cached) + "
                f"{usage.completion_tokens} completion tokens"
            )
        case common_pb2.ModelToken(text=text):
            return repr(text)
        case common_pb2.AssistantMessage(text=text):
            return text
        case common_pb2.ToolCall(tool=tool, arguments=arguments):
            return f"{tool} {compact_json(struct(arguments))}"
        case common_pb2.ToolResult() as result:
            return "ok " + compact_json(struct(result.result)) if result.ok else f"error: {result.error}"
        case common_pb2.ApprovalRequested() as asked:
            return f"{asked.approval_id}: {asked.tool} {compact_json(struct(asked.arguments))}"
        case common_pb2.ApprovalDecided() as decided:
            reason = f" ({decided.reason})" if decided.reason else ""
            return f"{decided.approval_id}: {decided.decision}{reason}"
        case common_pb2.Error(code=code, message=message):
            return f"{code}: {message}"
        case _:
            # A directive, and any type without a line of its own: its fields as JSON.
            return compact_json(event.data)


def event_line(event: Event) -> str:
    seq = str(event.seq) if event.seq else "·"
    return f"{seq:>5}  {event.type:<20} {event_summary(event)}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO, max_width: int = 60) -> None:
    """A plain aligned table; cells longer than `max_width` are cut with an ellipsis."""
    # A cell is one line: newlines and runs of spaces (a title with a system prompt) collapse.
    flat = [[" ".join(cell.split()) for cell in row] for row in rows]
    cells = [[cell if len(cell) <= max_width else cell[: max_width - 1] + "…" for cell in row] for row in flat]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    out.writelines(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in [list(headers), *cells]
    )
