"""An MCP tool result as a DuckLM tool result: its text, its structured content where the
server gave one, and a one-line summary of every other content block (image, audio, resource,
link), so nothing the server returned is dropped without a word.

Text is clipped at a size cap, and the result then says so (`truncated`, `note`). Structured
content that does not fit in what is left of the cap is left out, with a note saying it was.

This module only reshapes a result; it never calls a server.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

__all__ = ["tool_result"]


def _summary(block: types.ContentBlock) -> tuple[str, str]:
    """(text to keep, summary line) of one content block; either may be empty."""
    if isinstance(block, types.TextContent):
        return block.text, ""
    if isinstance(block, types.ImageContent):
        return "", f"image ({block.mime_type}, {_decoded_size(block.data)} bytes) not shown"
    if isinstance(block, types.AudioContent):
        return "", f"audio ({block.mime_type}, {_decoded_size(block.data)} bytes) not shown"
    if isinstance(block, types.ResourceLink):
        return "", f"link to resource {block.uri} ({block.name})"
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, types.TextResourceContents):
            return f"[resource {resource.uri}]\n{resource.text}", ""
        return "", f"binary resource {resource.uri} ({resource.mime_type or 'unknown type'}) not shown"
    return "", f"content of type '{getattr(block, 'type', type(block).__name__)}' not shown"


def _decoded_size(data: str) -> int:
    # Base64: 4 characters carry 3 bytes.
    return len(data) * 3 // 4


def tool_result(server: str, tool: str, result: types.CallToolResult, max_chars: int) -> dict[str, Any]:
    """The result the model sees; `max_chars` caps its text and structured content together."""
    texts: list[str] = []
    summaries: list[str] = []
    for block in result.content:
        text, summary = _summary(block)
        if text:
            texts.append(text)
        if summary:
            summaries.append(summary)
    text = "\n".join(texts)
    notes: list[str] = []
    truncated = False
    if len(text) > max_chars:
        notes.append(f"text clipped: the first {max_chars} of {len(text)} characters are shown")
        text = text[:max_chars]
        truncated = True
    out: dict[str, Any] = {
        "server": server,
        "tool": tool,
        "is_error": bool(result.is_error),
        "text": text,
    }
    structured = result.structured_content
    if structured is not None:
        size = len(json.dumps(structured, ensure_ascii=False))
        if size <= max_chars - len(text):
            out["structured_content"] = structured
        else:
            notes.append(f"structured content ({size} characters) left out: it exceeds the size cap")
            truncated = True
    if summaries:
        out["other_content"] = summaries
    out["truncated"] = truncated
    if notes:
        out["note"] = "; ".join(notes)
    return out
