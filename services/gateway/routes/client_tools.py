"""The OpenAI API's function calling and response_format, translated for the runtime.

`tools` become the turn's client functions (offered to the model beside DuckLM's own tools,
never run by DuckLM); when the model calls one, the completion answers with `tool_calls` and
finish_reason "tool_calls". Each call id names its task (`call_<task id>_<call id>`), so the
follow-up request — the client's `tool` messages with the results — continues the same task.
`response_format` json_object / json_schema becomes the turn's reply schema, which the runtime
enforces with the same constrained decoding as every directive.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2
from pydantic import BaseModel, ConfigDict, Field

from services.common.protos import from_struct, to_struct
from services.gateway.errors import ApiError

__all__ = ["FunctionTool", "call_id", "client_functions", "reply_schema", "tool_call", "tool_results"]

_CALL_ID = re.compile(r"^call_([0-9a-f]{32})_([0-9a-f]{1,32})$")


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = Field(default="", max_length=2000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionSpec


def client_functions(tools: list[FunctionTool] | None, tool_choice: Any) -> list[runtime_pb2.ClientFunction]:
    """The functions to offer this turn: none with tool_choice "none"; "required" and a named
    function are refused (DuckLM's model may always answer instead of calling)."""
    if tool_choice not in (None, "none", "auto"):
        raise ApiError(
            400,
            "INVALID_ARGUMENT",
            "tool_choice: only \"auto\" and \"none\" are supported (the model may always answer instead of calling)",
        )
    if not tools or tool_choice == "none":
        return []
    return [
        runtime_pb2.ClientFunction(
            name=tool.function.name,
            description=tool.function.description,
            parameters=to_struct(tool.function.parameters or {"type": "object"}),
        )
        for tool in tools
    ]


def reply_schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema the answer must match, or None for free text."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        schema = ((response_format or {}).get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict) or not schema:
            raise ApiError(400, "INVALID_ARGUMENT", "response_format: json_schema needs a `schema` object")
        return schema
    raise ApiError(
        400, "INVALID_ARGUMENT", f"response_format: type {kind!r} is not supported (text, json_object, json_schema)"
    )


def call_id(task_id: str, call: str) -> str:
    return f"call_{task_id}_{call}"


def tool_call(task_id: str, call: common_pb2.ToolCall, index: int) -> dict[str, Any]:
    """A client function call as the OpenAI API returns it."""
    return {
        "index": index,
        "id": call_id(task_id, call.call_id),
        "type": "function",
        "function": {"name": call.tool, "arguments": json.dumps(from_struct(call.arguments))},
    }


def tool_results(messages: list[Any]) -> tuple[str, str]:
    """(task id, user message) for a request that ends with the client's `tool` messages: the
    results, named by function, continue the task that asked for them."""
    trailing = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        trailing.append(message)
    trailing.reverse()
    names: dict[str, str] = {}
    for message in messages:
        for call in (message.model_extra or {}).get("tool_calls") or []:
            if isinstance(call, dict):
                names[str(call.get("id"))] = str((call.get("function") or {}).get("name", "a function"))
    task_ids = set()
    parts = []
    for message in trailing:
        given = str((message.model_extra or {}).get("tool_call_id", ""))
        match = _CALL_ID.match(given)
        if not match:
            raise ApiError(
                400,
                "INVALID_ARGUMENT",
                f"messages: tool_call_id {given!r} does not name a DuckLM call (call_<task id>_<call id>)",
            )
        task_ids.add(match.group(1))
        parts.append(f"The function {names.get(given, 'you called')} returned:\n{message.text().strip() or '(nothing)'}")
    if len(task_ids) != 1:
        raise ApiError(400, "INVALID_ARGUMENT", "messages: the tool results must answer calls of one task")
    return task_ids.pop(), "\n\n".join(parts)
