"""Who may call the gateway.

Bound to loopback, the gateway needs no token. Bound to any other address it refuses to start
without `DUCKLM_GATEWAY_TOKEN` (`check_exposure`), and with a token set every API call needs
`Authorization: Bearer <token>` — or, for the WebChat page, the session cookie that
POST /v1/auth/login sets after checking the token. The cookie holds an HMAC of the token (never
the token), is HttpOnly and SameSite=Strict; a cookie-authenticated request that changes
something must also come from the gateway's own origin.

Open without a token: the WebChat page and its static files (they hold no data), /healthz
(probes cannot carry secrets; it only says which backends answer), /openapi.json (the API's
public description) and the /v1/auth/* routes the login form uses.

This module must never log or echo a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

from pydantic import Field
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.asgi import HttpMiddleware
from services.common.config import ConfigError
from services.gateway.api import ApiRoute, Doc
from services.gateway.config import Settings
from services.gateway.errors import ApiError, error_response
from services.gateway.inputs import Body, read_body

__all__ = [
    "MIN_TOKEN_CHARS",
    "SESSION_COOKIE",
    "TokenAuthMiddleware",
    "check_exposure",
    "is_loopback",
    "routes",
]

SESSION_COOKIE = "ducklm_session"
MIN_TOKEN_CHARS = 16
OPEN_PATHS = frozenset(
    {
        "/",
        "/healthz",
        "/openapi.json",
        "/docs",
        "/favicon.ico",
        "/v1/auth/session",
        "/v1/auth/login",
        "/v1/auth/logout",
    }
)
OPEN_PREFIXES = ("/static/",)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the gateway reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_exposure(settings: Settings) -> None:
    """Refuses a gateway reachable from other machines without a token (ConfigError says how)."""
    if settings.token and len(settings.token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"DUCKLM_GATEWAY_TOKEN must be at least {MIN_TOKEN_CHARS} characters (use a random one)"
        )
    if not settings.token and not is_loopback(settings.host):
        raise ConfigError(
            f"DUCKLM_GATEWAY_HOST={settings.host} is not a loopback address: set DUCKLM_GATEWAY_TOKEN "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) so that only clients "
            "with the token can use DuckLM, or bind to 127.0.0.1"
        )


def session_value(token: str) -> str:
    """What the WebChat cookie holds: derived from the token, so the cookie never reveals it."""
    return hmac.new(token.encode(), b"ducklm-webchat-session-v1", hashlib.sha256).hexdigest()


def _bearer(headers: Headers) -> str:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _same_origin(headers: Headers) -> bool:
    origin = headers.get("origin")
    return origin is None or urlsplit(origin).netloc == headers.get("host", "")


def authorized(connection: HTTPConnection, token: str) -> bool:
    given = _bearer(connection.headers)
    if given:
        return hmac.compare_digest(given.encode(), token.encode())
    cookie = connection.cookies.get(SESSION_COOKIE, "")
    if cookie and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
        return connection.scope["method"] in _SAFE_METHODS or _same_origin(connection.headers)
    return False


class TokenAuthMiddleware(HttpMiddleware):
    """Refuses (401) every non-open request without the token, before any route runs."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.token:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if (
            path in OPEN_PATHS
            or path.startswith(OPEN_PREFIXES)
            or authorized(HTTPConnection(scope), self.token)
        ):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "UNAUTHENTICATED",
            "this DuckLM gateway requires a token: send 'Authorization: Bearer <token>' "
            "(or log in to WebChat)",
            headers={"WWW-Authenticate": 'Bearer realm="ducklm"'},
        )
        await response(scope, receive, send)


class LoginBody(Body):
    token: str = Field(min_length=1, max_length=4096)


def _token(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.token


async def session(request: Request) -> Response:
    token = _token(request)
    return JSONResponse(
        {"auth_required": bool(token), "authenticated": not token or authorized(request, token)}
    )


async def login(request: Request) -> Response:
    body = await read_body(request, LoginBody)
    token = _token(request)
    if not token:
        return Response(status_code=204)
    if not hmac.compare_digest(body.token.encode(), token.encode()):
        await asyncio.sleep(0.3)  # slows down guessing; tokens are long anyway
        raise ApiError(401, "UNAUTHENTICATED", "wrong token")
    response = Response(status_code=204)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


routes = [
    ApiRoute("/v1/auth/session", "GET", session, Doc(
        "Whether a token is needed and whether this client has it", "auth", reply="Session", backend=False,
        public=True,
    )),
    ApiRoute("/v1/auth/login", "POST", login, Doc(
        "Check the token and set the WebChat session cookie", "auth", ok=204, backend=False, body=LoginBody,
        public=True,
    )),
    ApiRoute("/v1/auth/logout", "POST", logout, Doc(
        "Clear the WebChat session cookie", "auth", public=True, responses={"204": {"description": "Logged out"}},
    )),
]
