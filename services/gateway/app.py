"""The gateway's Starlette app: WebChat, the REST API and the OpenAI-compatible endpoint, each
route a thin translation to gRPC (services/gateway/routes/).

Built by `create_app(settings)`, which refuses settings that would expose DuckLM without a token;
no other host name or web site can drive it (services/gateway/sites.py);
the backends' channels open at start-up and close at shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from services.common.metrics import HttpMetricsMiddleware
from services.common.tracing import tracing_on
from services.gateway import auth
from services.gateway.access_log import AccessLogMiddleware
from services.gateway.backends import Backends
from services.gateway.config import Settings
from services.gateway.errors import EXCEPTION_HANDLERS
from services.gateway.mcp_server import McpEndpoint
from services.gateway.routes import pages
from services.gateway.routes.table import ROUTES
from services.gateway.sites import SiteGuardMiddleware
from services.gateway.sse import StreamGate
from services.gateway.tracing import TracingMiddleware

__all__ = ["create_app"]


def create_app(settings: Settings, backends: Backends | None = None) -> Starlette:
    auth.check_exposure(settings)
    # DuckLM's own MCP server at /mcp (behind the same token); its sessions live with the app.
    mcp = McpEndpoint(settings, lambda: app.state.backends)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.backends = backends or Backends.connect(settings)
        try:
            async with mcp.running():
                yield
        finally:
            await app.state.backends.close()

    app = Starlette(
        routes=[*ROUTES, mcp.route],
        middleware=[
            # First, so the request's span covers everything else the gateway does for it.
            *([Middleware(TracingMiddleware)] if tracing_on() else []),
            Middleware(AccessLogMiddleware),
            Middleware(HttpMetricsMiddleware),
            Middleware(pages.SecurityHeadersMiddleware),
            # Before authentication: a foreign Host or a cross-site request is refused, token or not.
            Middleware(SiteGuardMiddleware, settings=settings),
            Middleware(auth.TokenAuthMiddleware, token=settings.token),
        ],
        exception_handlers=dict[Any, Any](EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.streams = StreamGate(settings.max_open_streams)
    return app
