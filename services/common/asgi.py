"""`HttpMiddleware`: the shape every pure-ASGI middleware of DuckLM shares — it wraps an app,
acts on HTTP requests only, and passes every other scope (lifespan, websocket) straight through.
A middleware subclasses it and writes `http`. Nothing here looks at a request itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the gateway serves HTTP; the other services need not import starlette
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HttpMiddleware"]


class HttpMiddleware:
    """Pure ASGI (not Starlette's BaseHTTPMiddleware), so a streamed reply (SSE) passes through
    it event by event, and the middleware sees the response end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handles one HTTP request (calling `self.app` to pass it on)."""
        raise NotImplementedError
