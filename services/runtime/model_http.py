"""The HTTP connections from the runtime to its model servers (aiohttp): one pool of kept-alive
connections per model server, a bound on the calls in flight to each, and three kinds of call
(a GET, a POST read whole, a POST read as a stream).

Why aiohttp here: a model call is the hot path of every step. Measured against an instant fake
server, a streamed call through aiohttp costs about 0.14 ms of CPU, through httpx about 1.1 ms,
which at 100 concurrent tasks was a third of the runtime's main thread. Request bodies (the
whole prompt and the step's JSON schema, often 20 KB) are written with orjson, about ten times
faster than the standard json module.

Transport failures are this module's own three exceptions, so callers never see a library's:
`ConnectFailed` (nothing reached the server), `TimedOut` (nothing arrived for the call's
timeout) and `HttpFailure` (the connection broke). None of them is a `TimeoutError`, so a
caller's own deadline (`asyncio.timeout`) is never mistaken for the server's silence. Nothing
here reads or changes what is sent or received.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

__all__ = ["MODEL_CONNECTIONS", "ConnectFailed", "HttpFailure", "HttpReply", "ModelHttp", "StreamReply", "TimedOut"]

# Calls in flight (and connections kept alive) per model server: a llama-server runs a few
# requests at once (its slots); more connections than that only queue on its side.
MODEL_CONNECTIONS = 8
# How long an idle connection to a model server is kept: under llama-server's own 5 s, since a
# connection reused just as the server closes it fails its request.
KEEPALIVE_SECONDS = 4.0


class HttpFailure(Exception):
    """The connection to a model server failed or broke during a call."""


class ConnectFailed(HttpFailure):
    """No connection could be made: the server took nothing of the request."""


class TimedOut(HttpFailure):
    """Nothing arrived from the server within the call's timeout."""


@dataclass(frozen=True)
class HttpReply:
    """A whole (non-streamed) answer."""

    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError where it is not."""
        return json.loads(self.body)


class StreamReply:
    """A streamed answer being read: its status, then its body as text pieces."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status

    async def text_pieces(self) -> AsyncIterator[str]:
        """The body as UTF-8 text, piece by piece as it arrives (a character split across two
        reads comes whole in the later piece)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        async with _failures():
            async for data in self._response.content.iter_any():
                text = decoder.decode(data)
                if text:
                    yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    async def read_some(self, limit: int) -> bytes:
        """At most `limit` bytes of the body, without reading a huge one into memory."""
        async with _failures():
            return await self._response.content.read(limit)


def _dropped(failure: BaseException | None) -> bool:
    """A connection that was gone when the request went (refused connections are not this)."""
    if isinstance(failure, aiohttp.ClientConnectorError):
        return False
    return isinstance(failure, aiohttp.ServerDisconnectedError | aiohttp.ClientConnectionResetError | aiohttp.ClientOSError)


def _json_headers(headers: dict[str, str] | None) -> dict[str, str]:
    return {"Content-Type": "application/json", **(headers or {})}


@asynccontextmanager
async def _failures() -> AsyncIterator[None]:
    """aiohttp's errors as this module's (its timeouts are TimeoutErrors; ours must not be)."""
    try:
        yield
    except aiohttp.ClientConnectorError as exc:
        raise ConnectFailed(repr(exc)) from exc
    except aiohttp.ServerTimeoutError as exc:
        raise TimedOut(repr(exc) if str(exc) else type(exc).__name__) from exc
    except aiohttp.ClientError as exc:
        raise HttpFailure(repr(exc)) from exc


class ModelHttp:
    """The runtime's one HTTP client to model servers; close it on shutdown. Its session is
    made on first use, inside the event loop that uses it."""

    def __init__(self, limit_per_server: int = MODEL_CONNECTIONS, keepalive_seconds: float = KEEPALIVE_SECONDS) -> None:
        self._limit = limit_per_server
        self._keepalive = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self._limit, keepalive_timeout=self._keepalive)
            # No proxies from the environment: model servers are addressed directly.
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)
        return self._session

    @staticmethod
    def _timeout(seconds: float | None) -> aiohttp.ClientTimeout:
        # `seconds` bounds the connection and each wait for data, as httpx's timeout did; the
        # whole call is the caller's to bound.
        return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)

    async def get(self, url: str, *, headers: dict[str, str] | None = None, timeout: float | None = None) -> HttpReply:
        # aiohttp itself sends a GET once more when a kept-alive connection turns out closed.
        async with _failures(), self._open().get(url, headers=headers, timeout=self._timeout(timeout)) as response:
            return HttpReply(response.status, await response.read())

    async def post(
        self, url: str, *, json_body: Any, headers: dict[str, str] | None = None, timeout: float | None = None,
    ) -> HttpReply:
        """A POST read whole."""
        response = await self._send(url, json_body, headers, timeout)
        try:
            async with _failures():
                return HttpReply(response.status, await response.read())
        finally:
            response.release()

    @asynccontextmanager
    async def stream(
        self, url: str, *, json_body: Any, headers: dict[str, str] | None = None, timeout: float | None = None,
    ) -> AsyncIterator[StreamReply]:
        """POSTs `json_body` and yields the answer unread. Leaving the block returns the
        connection to the pool if the body was read to its end, and closes it if not."""
        response = await self._send(url, json_body, headers, timeout)
        try:
            yield StreamReply(response)
        finally:
            response.release()

    async def _send(
        self, url: str, json_body: Any, headers: dict[str, str] | None, timeout: float | None,
    ) -> aiohttp.ClientResponse:
        """POSTs and returns the answer once its head arrived. A request the server dropped
        before answering (a kept-alive connection it had closed: llama-server closes one after a
        few requests) is sent once more, on another connection (the dropped one is gone from the
        pool): nothing a model server is asked changes anything, and nothing of an answer was
        read."""
        body = orjson.dumps(json_body)
        for attempt in (1, 2):
            try:
                async with _failures():
                    return await self._open().post(
                        url, data=body, headers=_json_headers(headers), timeout=self._timeout(timeout)
                    )
            except HttpFailure as exc:
                if attempt == 2 or not _dropped(exc.__cause__):
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
