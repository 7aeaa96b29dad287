"""How the command line shows things: one-line event summaries, tables, JSON."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, TextIO

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
    """What an event says, in one line."""
    data = event.data
    match event.type:
        case "task_created" | "user_message":
            return str(data.get("message") or data.get("text") or "")
        case "status_changed":
            reason = f" ({data['reason']})" if data.get("reason") else ""
            return f"{data.get('from')} → {data.get('to')}{reason}"
        case "model_call":
            usage = data.get("usage") or {}
            return (
                f"{data.get('role')} {data.get('model')} {data.get('latency_ms')} ms, "
                f"{usage.get('prompt_tokens', 0)} prompt ({usage.get('cached_prompt_tokens', 0)} cached) + "
                f"{usage.get('completion_tokens', 0)} completion tokens"
            )
        case "model_token":
            return repr(data.get("text", ""))
        case "directive":
            return compact_json(data)
        case "assistant_message":
            return str(data.get("text", ""))
        case "tool_call":
            return f"{data.get('tool')} {compact_json(data.get('arguments', {}))}"
        case "tool_result":
            return (
                "ok " + compact_json(data.get("result", {}))
                if data.get("ok")
                else f"error: {data.get('error')}"
            )
        case "approval_requested":
            return f"{data.get('approval_id')}: {data.get('tool')} {compact_json(data.get('arguments', {}))}"
        case "approval_decided":
            reason = f" ({data['reason']})" if data.get("reason") else ""
            return f"{data.get('approval_id')}: {data.get('decision')}{reason}"
        case "error":
            return f"{data.get('code')}: {data.get('message')}"
        case _:
            return compact_json(data)


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
