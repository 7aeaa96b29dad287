"""Reading what a client sent: the JSON body into a pydantic model, and query parameters.

Every refusal is an ApiError 400 (413 for an oversized body) naming the field and the problem,
raised before any backend is called.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request

from services.common.vocabulary import MAX_MESSAGE_CHARS
from services.gateway.errors import ApiError

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_CHARS",
    "Body",
    "query_bool",
    "query_choice",
    "query_int",
    "query_str",
    "read_body",
    "read_json",
]

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 1024 * 1024
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# Deeper JSON than this is refused: protobuf messages and Structs have a nesting limit too.
MAX_DEPTH = 32


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value <= INT64_MAX:
        raise ValueError(f"integer {text[:40]} does not fit in 64 bits")
    return value


def _no_constant(text: str) -> None:
    raise ValueError(f"{text} is not a JSON number")


def _depth(data: Any) -> int:
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                stack.extend(
                    (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
                )
    return deepest


class Body(BaseModel):
    """Base of every request body: unknown fields are refused, so a typo is a clear 400."""

    model_config = ConfigDict(extra="forbid")


def _refuse(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


async def read_json(request: Request, *, allow_empty: bool = False) -> Any:
    """The body parsed as JSON (None when empty and `allow_empty`)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if allow_empty:
            return None
        raise _refuse("request body is empty; send a JSON object")
    try:
        data = json.loads(raw, parse_float=_finite_float, parse_int=_int64, parse_constant=_no_constant)
        # JSON escapes can spell lone surrogates ("\ud800"), which no gRPC string can carry.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise _refuse("request body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeError are ValueErrors too
        raise _refuse(f"request body is not valid JSON: {exc}") from None
    if _depth(data) > MAX_DEPTH:
        raise _refuse(f"request body is nested deeper than {MAX_DEPTH} levels")
    return data


async def read_body(request: Request, model: type[M], *, allow_empty: bool = False) -> M:
    """Parses the JSON body into `model`; a 400 naming the first problem otherwise. With
    `allow_empty`, an empty body means "all defaults"."""
    data = await read_json(request, allow_empty=allow_empty)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _refuse("request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise _refuse(f"{where}: {first['msg']}") from None


def query_str(request: Request, name: str, default: str = "", *, max_length: int = 1024) -> str:
    value = request.query_params.get(name, default)
    if len(value) > max_length:
        raise _refuse(f"query parameter {name} is longer than {max_length} characters")
    return value


def query_int(
    request: Request, name: str, default: int = 0, *, minimum: int = 0, maximum: int = INT32_MAX
) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise _refuse(f"query parameter {name} must be an integer") from None
    if not minimum <= number <= maximum:
        raise _refuse(f"query parameter {name} must be between {minimum} and {maximum}")
    return number


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise _refuse(f"query parameter {name} must be true or false")


def query_choice(request: Request, name: str, choices: dict[str, int], default: str) -> int:
    """A query parameter naming one of `choices` (case-insensitive); returns the mapped value."""
    value = request.query_params.get(name, default).lower() or default
    if value not in choices:
        raise _refuse(f"query parameter {name} must be one of: {', '.join(choices)}")
    return choices[value]
