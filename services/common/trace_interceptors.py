"""The trace context carried over gRPC metadata (W3C `traceparent`), beside the auth interceptors:
clients opened by `open_channel` send the caller's current span, and every server built by
`build_server` continues it in a SERVER span per call, named and described as OpenTelemetry's
RPC conventions say (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`).

Both are added only while tracing is on (tracing.py): with it off a call goes through no extra
interceptor. Nothing here reads or changes a message.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from services.common.metrics import split_method
from services.common.tracing import tracer

__all__ = ["TracingServerInterceptor", "client_trace_interceptors"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
_AnyContext = grpc.aio.ServicerContext[Any, Any]


def _incoming_context(metadata: Any) -> otel_context.Context:
    carrier = {key: value for key, value in (metadata or ()) if isinstance(value, str)}
    return propagate.extract(carrier)


def _status_code(context: _AnyContext, failure: BaseException | None) -> int:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return int(code.value[0])
    if isinstance(code, int):
        return code
    return 2 if failure is not None else 0  # UNKNOWN for an exception escaping, else OK


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

    def finish(self, context: _AnyContext, failure: BaseException | None) -> None:
        code = _status_code(context, failure)
        self._span.set_attribute("rpc.grpc.status_code", code)
        if code != 0:
            self._span.set_status(Status(StatusCode.ERROR, type(failure).__name__ if failure else ""))
        otel_context.detach(self._token)
        self._span.end()


def _wrap_unary_response(method: str, behavior: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def traced(request: Any, context: _AnyContext) -> Any:
        call = _ServerCall(method, context.invocation_metadata())
        failure: BaseException | None = None
        try:
            return await behavior(request, context)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            call.finish(context, failure)

    return traced


def _wrap_stream_response(method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behavior):
        return _wrap_unary_response(method, behavior)

    async def traced(request: Any, context: _AnyContext) -> AsyncIterator[Any]:
        call = _ServerCall(method, context.invocation_metadata())
        failure: BaseException | None = None
        try:
            async for response in behavior(request, context):
                yield response
        except BaseException as exc:
            failure = exc
            raise
        finally:
            call.finish(context, failure)

    return traced


class TracingServerInterceptor(grpc.aio.ServerInterceptor):
    """Continues the caller's trace in a SERVER span around every call of every shape."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Req, Resp] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Req, Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        if method.startswith("/grpc.health.v1.Health/"):
            return handler  # probes every few seconds: not part of any task's trace
        codecs: dict[str, Any] = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_wrap_unary_response(method, handler.unary_unary), **codecs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_wrap_unary_response(method, handler.stream_unary), **codecs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_wrap_stream_response(method, handler.unary_stream), **codecs)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                _wrap_stream_response(method, handler.stream_stream), **codecs
            )
        return handler


def _with_trace_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return details
    metadata = grpc.aio.Metadata(*(tuple(details.metadata) if details.metadata else ()))
    for key, value in carrier.items():
        metadata.add(key, value)
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)


class _UnaryUnaryTrace(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_trace_context(client_call_details), request)


class _UnaryStreamTrace(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_trace_context(client_call_details), request)


class _StreamUnaryTrace(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_trace_context(client_call_details), request_iterator)


class _StreamStreamTrace(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_trace_context(client_call_details), request_iterator)


def client_trace_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """One interceptor per call shape (a grpc.aio channel files each under the first shape it
    implements), each adding the current trace context to the call's metadata."""
    return [_UnaryUnaryTrace(), _UnaryStreamTrace(), _StreamUnaryTrace(), _StreamStreamTrace()]
