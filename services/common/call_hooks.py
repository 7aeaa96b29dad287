"""The two ways DuckLM's interceptors hook into gRPC calls, written once for every call shape:

- `observe_handler`: a server handler of any shape (unary or streaming, either way) wrapped so
  that something is opened when the call starts and told how it ended (the status code and
  any exception escaping) — the metrics (metrics.py) and the trace spans (trace_interceptors.py).
- `metadata_interceptors`: client interceptors, one per call shape, that add metadata to every
  outgoing call — the bearer token (auth.py) and the trace context (trace_interceptors.py).

Nothing here reads or changes a message, or decides whether a call may go on.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import grpc

__all__ = [
    "AnyContext", "CallEnd", "ObservingInterceptor", "Start", "metadata_interceptors", "observe_handler", "status_of",
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
# Any method's context: the hooks never look at the messages.
AnyContext = grpc.aio.ServicerContext[Any, Any]


class CallEnd(Protocol):
    """What a hook opened for one call; told once how it ended."""

    def finish(self, context: AnyContext, failure: BaseException | None) -> None: ...


def status_of(context: AnyContext, failure: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with: the one the handler set or aborted with, else CANCELLED
    for a cancelled handler, UNKNOWN for any other exception escaping (what the client gets),
    OK otherwise."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        # grpc.aio reports the code it was aborted with as the raw integer.
        return next((status for status in grpc.StatusCode if status.value[0] == code), grpc.StatusCode.UNKNOWN)
    if isinstance(failure, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN if failure is not None else grpc.StatusCode.OK


Start = Callable[[AnyContext], CallEnd]


def _wrap_unary_response(start: Start, behavior: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    # `behavior` is a coroutine function under grpc.aio; the grpc stubs type handlers as synchronous.
    async def observed(request: Any, context: AnyContext) -> Any:
        call = start(context)
        failure: BaseException | None = None
        try:
            return await behavior(request, context)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            call.finish(context, failure)

    return observed


def _wrap_stream_response(start: Start, behavior: Callable[..., Any]) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behavior):
        # A streaming handler that writes with `context.write` and returns nothing.
        return _wrap_unary_response(start, behavior)

    async def observed(request: Any, context: AnyContext) -> AsyncIterator[Any]:
        call = start(context)
        failure: BaseException | None = None
        try:
            async for response in behavior(request, context):
                yield response
        except BaseException as exc:
            failure = exc
            raise
        finally:
            call.finish(context, failure)

    return observed


def observe_handler(handler: grpc.RpcMethodHandler[Req, Resp], start: Start) -> grpc.RpcMethodHandler[Req, Resp]:
    """`handler`, of the same shape, calling `start(context)` as each call begins and the
    returned `finish` as it ends (a stream: when its last message went, or it failed)."""
    codecs: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(_wrap_unary_response(start, handler.unary_unary), **codecs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_wrap_unary_response(start, handler.stream_unary), **codecs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_wrap_stream_response(start, handler.unary_stream), **codecs)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(_wrap_stream_response(start, handler.stream_stream), **codecs)
    return handler


class ObservingInterceptor(grpc.aio.ServerInterceptor):
    """A server interceptor that observes the calls `starter(method)` gives a start for (None:
    leaves the method's calls alone), of every shape."""

    def __init__(self) -> None:
        # Each method's handler as last wrapped, with the handler it wraps: a method's handler is
        # the same object call after call, so it is wrapped once, not on every call.
        self._observed: dict[str, tuple[Any, Any]] = {}

    def starter(self, method: str) -> Start | None:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Req, Resp] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Req, Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        kept = self._observed.get(method)
        if kept is not None and kept[0] is handler:
            wrapped: grpc.RpcMethodHandler[Req, Resp] = kept[1]
            return wrapped
        start = self.starter(method)
        wrapped = handler if start is None else observe_handler(handler, start)
        self._observed[method] = (handler, wrapped)
        return wrapped


# -- outgoing metadata -----------------------------------------------------------------------

Extra = Callable[[], Sequence[tuple[str, str]]]


def _with_metadata(details: grpc.aio.ClientCallDetails, extra: Extra) -> grpc.aio.ClientCallDetails:
    added = extra()
    if not added:
        return details
    metadata = grpc.aio.Metadata(*(tuple(details.metadata) if details.metadata else ()))
    for key, value in added:
        metadata.add(key, value)
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)


class _Adds:
    def __init__(self, extra: Extra) -> None:
        self._extra = extra


class _UnaryUnary(_Adds, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_metadata(client_call_details, self._extra), request)


class _UnaryStream(_Adds, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_metadata(client_call_details, self._extra), request)


class _StreamUnary(_Adds, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_metadata(client_call_details, self._extra), request_iterator)


class _StreamStream(_Adds, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_metadata(client_call_details, self._extra), request_iterator)


def metadata_interceptors(extra: Extra) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors adding `extra()` (read at each call) to every call's metadata: one
    per call shape, because a grpc.aio channel files each interceptor under the first shape it
    implements, so a single class covering all four would only see unary calls."""
    return [_UnaryUnary(extra), _UnaryStream(extra), _StreamUnary(extra), _StreamStream(extra)]
