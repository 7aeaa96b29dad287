"""Reading the runtime's gRPC event streams for the routes that relay them (tasks' events, chat,
the OpenAI-compatible completions): one way to read, and the first event awaited before any
HTTP answer is sent. Holds no route and never writes to a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
from ducklm.common.v1 import common_pb2

from services.gateway.errors import call

__all__ = ["first_event", "read_stream"]


async def read_stream(stream: grpc.aio.UnaryStreamCall[Any, Any]) -> AsyncIterator[common_pb2.Event]:
    """A gRPC response stream read with read() (a stream is read one way only, never mixed)."""
    while True:
        item = await stream.read()
        if item is grpc.aio.EOF:
            return
        # The grpc stubs type read() as `object` (EOF's type is private); past EOF it is an Event.
        yield cast(common_pb2.Event, item)


async def first_event(service: str, stream: grpc.aio.UnaryStreamCall[Any, Any]) -> common_pb2.Event | None:
    """Waits for a stream's first event, so a bad request (unknown task, empty message) gets its
    proper HTTP status instead of a 200 followed by an error event. None: the stream was empty."""
    try:
        first = await call(service, stream.read())
    except BaseException:
        stream.cancel()
        raise
    return None if first is grpc.aio.EOF else cast(common_pb2.Event, first)
