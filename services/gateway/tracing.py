"""The gateway's part of a trace: one SERVER span per HTTP request (OpenTelemetry's HTTP
conventions: `http.request.method`, `url.path`, `http.route`-less, `http.response.status_code`),
continuing a `traceparent` the client sent, and current while the request is handled, so its
gRPC calls carry it on (services/common/trace_interceptors.py).

Added only while tracing is on (services/common/tracing.py). Never records a header, a query or
a body: they may hold a token or the user's words.
"""

from __future__ import annotations

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import Message, Receive, Scope, Send

from services.common.asgi import HttpMiddleware
from services.common.tracing import tracer

__all__ = ["TracingMiddleware"]


class TracingMiddleware(HttpMiddleware):
    """Pure ASGI, so a streamed reply (SSE) is inside its request's span to the last event."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers", ())}
        method, path = scope.get("method", ""), scope.get("path", "")
        with tracer.start_as_current_span(
            f"{method} {path}", context=propagate.extract(carrier), kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path, "url.scheme": scope.get("scheme", "http")},
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_traced)
