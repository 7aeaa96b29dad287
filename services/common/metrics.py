"""Prometheus metrics every DuckLM service shares: gRPC calls served (count, errors by status
code, latency, in flight), HTTP requests for the gateway, and the /metrics endpoint.

- `GrpcMetricsInterceptor` is added to every gRPC server by `build_server`.
- `serve_metrics(service)` exposes /metrics over HTTP on `DUCKLM_<SERVICE>_METRICS_ADDRESS`
  (e.g. `127.0.0.1:9451`; unset or empty: off). `serve()` calls it for each gRPC service;
  `deploy/stack.py` sets the variable for every service it starts.
- `HttpMetricsMiddleware` (pure ASGI) counts a web app's requests; the gateway mounts
  `prometheus_client.make_asgi_app()` at /metrics itself.

Metrics live in prometheus_client's default registry: one process is one service. This module
must never label a metric with anything unbounded (task ids, messages, paths with ids in them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from services.common.asgi import HttpMiddleware
from services.common.call_hooks import AnyContext, ObservingInterceptor, Start, status_of

if TYPE_CHECKING:  # only the gateway serves HTTP; the other services need not import starlette
    from starlette.types import Message, Receive, Scope, Send

__all__ = [
    "GrpcMetricsInterceptor",
    "HttpMetricsMiddleware",
    "metrics_address",
    "serve_metrics",
    "split_method",
]

log = logging.getLogger(__name__)

# Latency buckets in seconds: from a health check (~1 ms) to a long chat turn (minutes).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

GRPC_REQUESTS = Counter(
    "ducklm_grpc_server_requests",
    "gRPC calls this service finished, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_ERRORS = Counter(
    "ducklm_grpc_server_errors",
    "gRPC calls this service finished with a status other than OK.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_LATENCY = Histogram(
    "ducklm_grpc_server_handling_seconds",
    "Time from receiving a gRPC call to finishing it (a stream counts until it ends).",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
GRPC_IN_FLIGHT = Gauge(
    "ducklm_grpc_server_in_flight",
    "gRPC calls (streams included) being handled now.",
    ["grpc_service", "grpc_method"],
)
HTTP_REQUESTS = Counter(
    "ducklm_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "ducklm_http_request_seconds",
    "Time to answer an HTTP request (a streamed response counts until it ends).",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)




def split_method(full_method: str) -> tuple[str, str]:
    """'/ducklm.runtime.v1.RuntimeService/Chat' -> ('ducklm.runtime.v1.RuntimeService', 'Chat')."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


class _Call:
    """Times one call and records it when it ends."""

    def __init__(self, full_method: str) -> None:
        self.service, self.method = split_method(full_method)
        self.started = time.perf_counter()
        GRPC_IN_FLIGHT.labels(self.service, self.method).inc()

    def finish(self, context: AnyContext, failure: BaseException | None) -> None:
        code = str(status_of(context, failure).name)
        GRPC_IN_FLIGHT.labels(self.service, self.method).dec()
        GRPC_REQUESTS.labels(self.service, self.method, code).inc()
        if code != "OK":
            GRPC_ERRORS.labels(self.service, self.method, code).inc()
        GRPC_LATENCY.labels(self.service, self.method).observe(time.perf_counter() - self.started)


class GrpcMetricsInterceptor(ObservingInterceptor):
    """Counts, times and tracks every call of every shape. Put it first among a server's
    interceptors so that calls the others refuse (e.g. without a token) are counted too."""

    def starter(self, method: str) -> Start:
        return lambda context: _Call(method)


def metrics_address(service: str, environ: dict[str, str] | None = None) -> str:
    """Where `service` serves /metrics: `DUCKLM_<SERVICE>_METRICS_ADDRESS`, or "" (off)."""
    env = os.environ if environ is None else environ
    return env.get(f"DUCKLM_{service.upper()}_METRICS_ADDRESS", "").strip()


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a metrics address must look like HOST:PORT, not {address!r}")
    return host.strip("[]"), int(port)


async def _nothing() -> None:
    return None


async def serve_metrics(service: str, address: str | None = None) -> Callable[[], Awaitable[None]]:
    """Serves /metrics over HTTP on `address` (default: from the environment) and returns the
    cleanup that stops it. Off when no address is set. A port that cannot be bound is logged and
    skipped: metrics must never stop a service from serving."""
    address = metrics_address(service) if address is None else address
    if not address:
        return _nothing
    host, port = _host_port(address)
    try:
        # prometheus_client serves from its own daemon thread, off the event loop.
        httpd, thread = start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("%s: cannot serve metrics on %s (%s); running without /metrics", service, address, exc)
        return _nothing
    log.info("%s serving Prometheus metrics on http://%s/metrics", service, address)

    async def stop() -> None:
        # shutdown() blocks until the serving thread notices; run it off the event loop.
        await asyncio.to_thread(httpd.shutdown)
        httpd.server_close()
        thread.join(timeout=5)

    return stop


def _route_template(scope: Scope) -> str:
    """The matched route with its parameters put back as `{name}` (keeps the label bounded)."""
    path: str = scope.get("path", "")
    params: dict[str, Any] = scope.get("path_params") or {}
    if not params and "endpoint" not in scope:
        return "unmatched"
    for name, value in params.items():
        path = path.replace(f"/{value}", f"/{{{name}}}", 1)
    return path


class HttpMetricsMiddleware(HttpMiddleware):
    """ASGI middleware counting and timing HTTP requests (for the gateway)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = _route_template(scope)
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
