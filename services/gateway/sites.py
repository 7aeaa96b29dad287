"""Which sites may drive the gateway: no other web page, and no other host name, token or not.

Two checks, before authentication and before any route runs:

- **Host.** Every request's `Host` (without the port) must be a name the gateway serves:
  `DUCKLM_GATEWAY_ALLOWED_HOSTS` when set, otherwise the loopback names (`localhost`,
  `127.0.0.1`, `::1`) and the bound address. A page on `evil.example` whose name an attacker
  rebinds to 127.0.0.1 (DNS rebinding) sends `Host: evil.example` and is refused (400). Bound to
  every address (0.0.0.0, ::), the gateway cannot know its names and takes any Host unless they
  are configured; it then has a token, which the rebinding page does not.
- **Cross-site requests.** A request that can change something (any method but GET, HEAD and
  OPTIONS) must say `Content-Type: application/json`, which no HTML form and no "simple"
  cross-origin fetch can send without a CORS preflight the gateway never grants (415 otherwise).
  If it carries `Origin`, that must be the gateway's own origin (same host and port as the
  `Host` it was sent to) or one of `DUCKLM_GATEWAY_ALLOWED_ORIGINS`; without `Origin`,
  `Sec-Fetch-Site`, if present, must be `same-origin` or `none`. A request with neither comes
  from no browser (curl, the OpenAI SDKs, scripts) and passes with its JSON content type (403
  otherwise).

Starlette's TrustedHostMiddleware would do the Host half, but it splits the header at the first
':' and so cannot serve a bracketed IPv6 loopback (`[::1]:8080`); this module parses it properly.

This module only refuses requests; it never changes one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.asgi import HttpMiddleware
from services.gateway.config import Settings
from services.gateway.errors import error_response

__all__ = ["LOOPBACK_NAMES", "SiteGuardMiddleware", "host_name", "served_hosts"]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BROWSER_SAME_SITE = frozenset({"same-origin", "none"})
_WRONG_HOST = (
    "this DuckLM gateway does not serve that host name; add it to DUCKLM_GATEWAY_ALLOWED_HOSTS "
    "if it is really this machine"
)
_NOT_JSON = (
    "requests that change something must send 'Content-Type: application/json' "
    "(with curl: -H 'Content-Type: application/json' or --json)"
)
_CROSS_SITE = (
    "requests from another site's page are refused; add its origin to "
    "DUCKLM_GATEWAY_ALLOWED_ORIGINS if you trust it"
)


def host_name(header: str) -> str:
    """The name in a Host header, lower case, without port, brackets or a final dot."""
    text = header.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else ""
    if text.count(":") == 1:
        text = text.partition(":")[0]
    return text.rstrip(".")


def served_hosts(settings: Settings) -> frozenset[str] | None:
    """The host names the gateway answers to; None means any (see the module docstring)."""
    if settings.allowed_hosts:
        names = {host_name(name) for name in settings.allowed_hosts}
        return None if "*" in names else frozenset(names)
    bound = host_name(settings.host)
    if bound in _WILDCARD_BINDS:
        return None
    return LOOPBACK_NAMES | {bound}


def _media_type(headers: Headers) -> str:
    return headers.get("content-type", "").partition(";")[0].strip().lower()


class SiteGuardMiddleware(HttpMiddleware):
    """Refuses foreign Host names and cross-site state-changing requests (module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        super().__init__(app)
        self.hosts = served_hosts(settings)
        self.origins = frozenset(origin.rstrip("/").lower() for origin in settings.allowed_origins)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, code, message = refusal
        await error_response(status, code, message)(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return 400, "HOST_NOT_ALLOWED", _WRONG_HOST
        if scope["method"] in _SAFE_METHODS:
            return None
        if _media_type(headers) != "application/json":
            return 415, "UNSUPPORTED_MEDIA_TYPE", _NOT_JSON
        origin = headers.get("origin")
        if origin is not None:
            if origin.rstrip("/").lower() in self.origins or _same_origin(origin, host):
                return None
            return 403, "CROSS_SITE_REQUEST", _CROSS_SITE
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site.lower() not in _BROWSER_SAME_SITE:
            return 403, "CROSS_SITE_REQUEST", _CROSS_SITE
        return None


def _same_origin(origin: str, host: str) -> bool:
    """Whether `origin` names the host and port this request was sent to (http or https)."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.strip().lower()
