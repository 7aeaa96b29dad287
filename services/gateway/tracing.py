"""The gateway's part of a trace: one SERVER span per HTTP request (OpenTelemetry's HTTP
conventions: `http.request.method`, `url.path`, `http.route`-less, `http.response.status_code`),
current while the request is handled, so its gRPC calls carry it on
(services/common/trace_interceptors.py).

A request about a task that exists (`/v1/tasks/{id}/...`, or `POST /v1/chat` naming `task_id`)
is a span of that task's trace (services/common/task_trace.py), with a `traceparent` the client
sent as a link; any other request continues the client's `traceparent`.

Added only while tracing is on (services/common/tracing.py). Never records a header, a query or
a body: they may hold a token or the user's words. Of a chat body it reads only `task_id`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import Message, Receive, Scope, Send

from services.common.asgi import HttpMiddleware
from services.common.task_trace import task_span
from services.common.tracing import tracer

__all__ = ["TracingMiddleware", "task_of_path"]

_TASK_PATH = re.compile(r"/v1/tasks/([^/]+)")
# A chat body is read ahead for its task_id only up to this size (a message is far smaller);
# past it the request is traced as one without a task.
_PEEK_BYTES = 256 * 1024


def task_of_path(path: str) -> str:
    """The task a path is about (`/v1/tasks/{id}` and below), or ''."""
    found = _TASK_PATH.match(path)
    return found.group(1) if found else ""


async def _read_ahead(receive: Receive) -> tuple[str, Receive]:
    """The `task_id` of a JSON chat body, and a `receive` that hands the app the body as sent."""
    held: list[Message] = []
    size, complete = 0, False
    while True:
        message = await receive()
        held.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break
        if size > _PEEK_BYTES:
            break
    task_id = ""
    if complete and size <= _PEEK_BYTES:
        try:
            data = json.loads(b"".join(m.get("body", b"") for m in held if m["type"] == "http.request"))
        except ValueError:
            data = None  # the route answers it with a 400
        if isinstance(data, dict) and isinstance(data.get("task_id"), str):
            task_id = data["task_id"]

    async def replay() -> Message:
        return held.pop(0) if held else await receive()

    return task_id, replay


class TracingMiddleware(HttpMiddleware):
    """Pure ASGI, so a streamed reply (SSE) is inside its request's span to the last event."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope.get("method", ""), scope.get("path", "")
        task_id = task_of_path(path)
        if not task_id and method == "POST" and path == "/v1/chat":
            task_id, receive = await _read_ahead(receive)
        with self._span(scope, f"{method} {path}", task_id) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_traced)

    @contextmanager
    def _span(self, scope: Scope, name: str, task_id: str) -> Iterator[Span]:
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers", ())}
        client = propagate.extract(carrier)
        attributes = {"http.request.method": scope.get("method", ""), "url.path": scope.get("path", ""),
                      "url.scheme": scope.get("scheme", "http")}
        if task_id:
            with task_span(name, task_id, {**attributes, "gen_ai.conversation.id": task_id}, kind=SpanKind.SERVER,
                           context=client) as span:
                yield span
            return
        with tracer.start_as_current_span(name, context=client, kind=SpanKind.SERVER, attributes=attributes) as span:
            yield span
