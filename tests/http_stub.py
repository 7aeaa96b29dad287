"""A local HTTP server answering every request with a test's own aiohttp handler, on a free port,
for tests of the runtime's HTTP clients against real HTTP (not a stand-in for a model in the
end-to-end tests: those use llama-server). Where a test needs a whole app, LocalHttpServer
(services/common/testing.py) serves one; this is for handlers that drop a connection or write
a body byte by byte, which an ASGI app cannot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def http_stub(handler: Handler) -> AsyncIterator[str]:
    """Serves `handler` for every method and path; yields the server's base URL."""
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()
