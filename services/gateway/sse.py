"""Server-Sent Events: the wire format, keep-alives, and the cap on open streams.

A stream's gRPC call is cancelled as soon as its HTTP client goes away (Starlette cancels the
body iterator; `EventStream` cancels the call). The DuckLM task itself runs on in the runtime.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.gateway.errors import ApiError

__all__ = ["EventStreamResponse", "StreamGate", "gated_stream", "sse", "sse_comment", "with_heartbeats"]

T = TypeVar("T")

_END = object()


def sse(data: Any, *, event: str = "", event_id: int | str | None = None) -> str:
    """One SSE message; `data` is sent as one line of JSON (or as is, when a str)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"id: {event_id}\n" if event_id else ""
    head += f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def sse_comment(text: str) -> str:
    """An SSE comment: clients ignore it; it keeps idle connections (and proxies) open."""
    return f": {text}\n\n"


async def with_heartbeats(source: AsyncIterator[T], interval: float) -> AsyncIterator[T | None]:
    """Yields what `source` yields, and None whenever it has been quiet for `interval` seconds.

    `source` is read by a helper task through a small queue, so a slow client slows the gRPC
    stream down (flow control) instead of piling events up in memory.
    """
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue(maxsize=64)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put((item, None))
        except Exception as exc:  # noqa: BLE001 - handed over and raised again by the reader below
            await queue.put((_END, exc))
        else:
            await queue.put((_END, None))

    reader = asyncio.create_task(pump())
    try:
        while True:
            try:
                item, error = await asyncio.wait_for(queue.get(), interval)
            except TimeoutError:
                yield None
                continue
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        # No await here: when the client has gone, the surrounding cancel scope cancels every
        # await in this block. Cancelling the reader is enough; it ends with its gRPC read.
        reader.cancel()


class StreamGate:
    """Counts open event streams and refuses new ones past `limit` (a 503 at once, not a hang)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def enter(self) -> Callable[[], None]:
        if self.open >= self.limit:
            raise ApiError(
                503,
                "RESOURCE_EXHAUSTED",
                f"the gateway already has {self.open} event streams open (DUCKLM_GATEWAY_MAX_OPEN_STREAMS); "
                "try again shortly",
            )
        self.open += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open -= 1

        return release


async def gated_stream(
    request: Request, start: Callable[[], Awaitable[T]], body: Callable[[T], AsyncIterator[str]]
) -> EventStreamResponse:
    """The one way an event stream opens: within the app's StreamGate (past its cap, a 503 and
    `start` is never called), `start()` begins the backend call, and `body(started)` is what the
    response sends; the slot is given back however the stream ends, or if starting failed."""
    gate: StreamGate = request.app.state.streams
    release = gate.enter()
    try:
        started = await start()
    except BaseException:
        release()
        raise
    return EventStreamResponse(body(started), release)


class EventStreamResponse(StreamingResponse):
    """A text/event-stream response that gives its StreamGate slot back however it ends."""

    def __init__(
        self,
        content: AsyncIterator[str],
        release: Callable[[], None],
        background: BackgroundTask | None = None,
    ):
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=background,
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
