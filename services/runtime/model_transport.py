"""The HTTP transport under the runtime's model clients: a pool of kept-alive connections per
model server, and a bound on the calls in flight to each server, waited for in a plain queue.

Why the bound: httpx's pool hands a free connection to a waiting request by scanning every
waiting request against every connection (and checks each idle socket with a system call), so
with hundreds of tasks waiting its own bookkeeping took most of the runtime's time. Here a call
waits for a slot in an asyncio.Semaphore first, so the pool never has a queue.
A slot is held until the response is read to its end or closed. Nothing here reads or changes
what is sent or received.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["MODEL_CONNECTIONS", "BoundedTransport", "model_transport"]

# Calls in flight (and connections kept alive) per model server: a llama-server runs a few
# requests at once (its slots); more connections than that only queue on its side, and each
# open connection costs httpx a check on every call.
MODEL_CONNECTIONS = 8


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that gives its slot back once read to its end or closed."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class BoundedTransport(httpx.AsyncBaseTransport):
    """At most `limit` requests in flight per server (scheme, host, port) through `inner`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int) -> None:
        self._inner = inner
        self._limit = limit
        self._slots: dict[tuple[str, str, int | None], asyncio.Semaphore] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.scheme, request.url.host, request.url.port)
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = asyncio.Semaphore(self._limit)
        await slots.acquire()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            slots.release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(response.stream, slots.release)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def model_transport(limit: int = MODEL_CONNECTIONS, *, keepalive_seconds: float = 60.0) -> BoundedTransport:
    """The transport the model clients share: `limit` kept-alive connections and calls in flight
    per model server, each let go after `keepalive_seconds` idle."""
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit, keepalive_expiry=keepalive_seconds)
    return BoundedTransport(httpx.AsyncHTTPTransport(limits=limits), limit)
