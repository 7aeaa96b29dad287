"""The WebChat page and its static files, /healthz, /openapi.json and the interactive API page
/docs (Swagger UI), and the security headers every response carries.

The page's Content-Security-Policy allows scripts and styles from the gateway's own files only
(no inline script, no other origin): even if some model or tool output were ever inserted as
HTML by mistake, no script in it could run.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import make_asgi_app
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from services.common.asgi import HttpMiddleware
from services.gateway.api import ApiRoute, Doc, backends_of
from services.gateway.openapi import openapi_document
from services.gateway.openapi_schemas import ANY_OBJ, ref
from services.gateway.sse import StreamGate

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC", "SecurityHeadersMiddleware", "routes"]

STATIC = Path(__file__).resolve().parents[1] / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeadersMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def webchat(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


async def api_docs(request: Request) -> Response:
    return FileResponse(STATIC / "docs.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


async def healthz(request: Request) -> Response:
    report = await backends_of(request).health()
    healthy = all(status == "serving" for status in report.values())
    streams: StreamGate = request.app.state.streams
    metrics = {"gateway": "/metrics", **request.app.state.settings.metrics_urls}
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "services": report, "open_streams": streams.open, "metrics": metrics},
        status_code=200 if healthy else 503,
    )


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


routes: list[BaseRoute] = [
    Route("/", webchat, methods=["GET"]),
    Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ApiRoute("/healthz", "GET", healthz, Doc("Health of every backend", "health", public=True, responses={
        "200": {"description": "All serving", "content": {"application/json": {"schema": ref("Health")}}},
        "503": {"description": "Some backend is not serving", "content": {"application/json": {"schema": ref("Health")}}},
    })),
    ApiRoute("/openapi.json", "GET", openapi, Doc("This document", "health", public=True, responses={
        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": ANY_OBJ}}},
    })),
    Route("/docs", api_docs, methods=["GET"]),
    # The gateway's own Prometheus metrics (HTTP requests by route and status, latencies).
    Mount("/metrics", app=make_asgi_app()),
]
