"""The gateway's REST routes as declarations: each route names its handler and says, next to it,
what the OpenAPI document tells clients (summary, query parameters, body model, answers).

`openapi.py` builds the document from these declarations alone, so it cannot describe a route
the app does not serve, nor miss one; path parameters come from the path itself. `unary` is the
one shape of a handler that answers one backend call with its reply as JSON.

This module never talks to a backend of its own accord and holds no route of its own.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.gateway.backends import Backends
from services.gateway.errors import call
from services.gateway.openapi_schemas import STR, Schema

__all__ = ["ApiRoute", "Doc", "Param", "backends_of", "paging", "path_params", "query", "unary"]

Endpoint = Callable[[Request], Awaitable[Response]]
Reply = TypeVar("Reply")


@dataclass(frozen=True)
class Param:
    """One query parameter as the document shows it."""

    name: str
    schema: Schema
    description: str = ""


def query(name: str, schema: Schema = STR, description: str = "") -> Param:
    return Param(name, schema, description)


def paging(maximum: int = 500) -> tuple[Param, ...]:
    """The page_size and page_token of every List route."""
    return (
        query("page_size", {"type": "integer", "minimum": 0, "maximum": maximum}, "0 means the default"),
        query("page_token", STR, "next_page_token of the previous page"),
    )


@dataclass(frozen=True)
class Doc:
    """What the OpenAPI document says of one route."""

    summary: str
    tag: str
    # The success status and the component schema of its JSON (None: no body).
    ok: int = 200
    reply: str | None = None
    # Error statuses beyond 400 and 401, which every route can answer.
    errors: tuple[int, ...] = ()
    # The route calls a backend, so it can answer 502 and 503.
    backend: bool = True
    body: type[BaseModel] | None = None
    body_required: bool = True
    params: tuple[Param, ...] = ()
    # The route can answer Server-Sent Events too.
    stream: bool = False
    # Served without the gateway token.
    public: bool = False
    # The answers written out in full, for the few routes that answer outside the usual shape.
    responses: dict[str, Any] | None = None


class ApiRoute(Route):
    """A Starlette route for one method, carrying its document entry."""

    def __init__(self, path: str, method: str, endpoint: Endpoint, doc: Doc) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method.lower()
        self.doc = doc


def path_params(path: str) -> list[str]:
    """The names of the `{parameters}` in a route's path, in order."""
    return re.findall(r"{(\w+)}", path)


def backends_of(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


async def unary(
    request: Request,
    service: str,
    # A generated unary stub method (`backends.runtime.GetTask`, …).
    rpc: Callable[..., Awaitable[Reply]],
    message: object,
    to_json: Callable[[Reply], Any] | None,
    *,
    status: int = 200,
    metadata: tuple[tuple[str, str], ...] | None = None,
) -> Response:
    """Calls `rpc` with the backends' deadline and answers its reply as JSON (`to_json` None: an
    empty 204); a gRPC failure becomes the HTTP error of its code, naming `service`."""
    backends = backends_of(request)
    reply = await call(service, rpc(message, timeout=backends.timeout, metadata=metadata))
    if to_json is None:
        return Response(status_code=204)
    return JSONResponse(to_json(reply), status_code=status)
