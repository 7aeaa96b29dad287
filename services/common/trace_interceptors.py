"""The trace context carried over gRPC metadata (W3C `traceparent`), beside the auth interceptors:
clients opened by `open_channel` send the caller's current span, and every server built by
`build_server` continues it in a SERVER span per call, named and described as OpenTelemetry's
RPC conventions say (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`).

Both are added only while tracing is on (tracing.py): with it off a call goes through no extra
interceptor. Nothing here reads or changes a message.
"""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from services.common.call_hooks import (
    AnyContext,
    ObservingInterceptor,
    Start,
    metadata_interceptors,
    status_of,
)
from services.common.metrics import split_method
from services.common.tracing import tracer

__all__ = ["TracingServerInterceptor", "client_trace_interceptors"]



def _incoming_context(metadata: Any) -> otel_context.Context:
    carrier = {key: value for key, value in (metadata or ()) if isinstance(value, str)}
    return propagate.extract(carrier)


class _ServerCall:
    """One call's SERVER span, opened when the handler starts and closed when it ends."""

    def __init__(self, full_method: str, metadata: Any) -> None:
        service, method = split_method(full_method)
        self._span = tracer.start_span(
            f"{service}/{method}", context=_incoming_context(metadata), kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
        )
        # Current for the handler: its own calls (and tasks it starts) continue this trace.
        self._token = otel_context.attach(set_span_in_context(self._span))

    def finish(self, context: AnyContext, failure: BaseException | None) -> None:
        code = int(status_of(context, failure).value[0])
        self._span.set_attribute("rpc.grpc.status_code", code)
        if code != 0:
            self._span.set_status(Status(StatusCode.ERROR, type(failure).__name__ if failure else ""))
        otel_context.detach(self._token)
        self._span.end()


class TracingServerInterceptor(ObservingInterceptor):
    """Continues the caller's trace in a SERVER span around every call of every shape."""

    def starter(self, method: str) -> Start | None:
        if method.startswith("/grpc.health.v1.Health/"):
            return None  # probes every few seconds: not part of any task's trace
        return lambda context: _ServerCall(method, context.invocation_metadata())


def _trace_context() -> list[tuple[str, str]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


def client_trace_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding the current trace context to every call's metadata."""
    return metadata_interceptors(_trace_context)
