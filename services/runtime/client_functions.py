"""What a calling client adds to one turn: its own functions (offered to the model beside
DuckLM's tools, but run by the client) and a JSON schema the turn's answer must match.

Both arrive with the user message and are recorded in its event (`client_functions`,
`reply_schema`), so a turn reads them from its log like everything else. A client function is
never executed here: calling one ends the turn.
"""

from __future__ import annotations

import re
from typing import Any

from services.common.errors import InvalidArgument
from services.runtime.events import UserMessage
from services.runtime.peers import ToolSpec

__all__ = ["check_functions", "client_tools", "merge_tools", "reply_schema"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_FUNCTIONS = 32


def check_functions(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The functions as recorded: names checked, parameters an object schema."""
    if len(functions) > MAX_FUNCTIONS:
        raise InvalidArgument(f"client_functions: at most {MAX_FUNCTIONS} functions")
    seen: set[str] = set()
    for function in functions:
        name = str(function.get("name", ""))
        if not _NAME.match(name):
            raise InvalidArgument(f"client_functions: {name!r} is not a valid function name (letters, digits, _ and -)")
        if name in seen:
            raise InvalidArgument(f"client_functions: {name!r} is given twice")
        seen.add(name)
        parameters = function.get("parameters") or {}
        if parameters.get("type", "object") != "object":
            raise InvalidArgument(f"client_functions: the parameters of {name!r} must be an object schema")
    return functions


def client_tools(message: UserMessage | None) -> list[ToolSpec]:
    """The client's functions for the turn of `message`, as tools the step schema can offer."""
    return [
        ToolSpec(
            name=function.name,
            description=function.description or "(a function of the client)",
            arguments_schema=dict(function.parameters or {"type": "object"}),
            read_only=False,
            requires_approval=False,
        )
        for function in (message.client_functions or () if message is not None else ())
    ]


def merge_tools(tools: list[ToolSpec], client: list[ToolSpec]) -> list[ToolSpec]:
    """DuckLM's tools and the client's; a client function shadows a tool of the same name."""
    names = {tool.name for tool in client}
    return [*(tool for tool in tools if tool.name not in names), *client]


def reply_schema(message: UserMessage | None) -> dict[str, Any] | None:
    schema = message.reply_schema if message is not None else None
    return dict(schema) if schema else None
