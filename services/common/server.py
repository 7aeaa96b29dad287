"""The one shape every DuckLM gRPC server has: build, add servicers + health + reflection,
bind, start, and stop gracefully on SIGTERM/SIGINT.

`build_server` is split from `serve` so tests can build the real server on port 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.auth import GrpcSecurity
from services.common.config import ConfigError
from services.common.metrics import GrpcMetricsInterceptor, serve_metrics
from services.common.reflection import add_reflection
from services.common.trace_interceptors import TracingServerInterceptor
from services.common.tracing import configure_tracing, tracing_on

__all__ = ["GrpcServer", "ServiceBinding", "build_server", "serve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceBinding:
    """One servicer and how to register it: `add(servicer, server)` and its full service name."""

    servicer: Any
    add: Callable[[Any, grpc.aio.Server], None]
    full_name: str


@dataclass
class GrpcServer:
    """A built, started server: its port and the health servicer whose status it reports."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]
    # Run after the server stops, in order: close databases, clients, background tasks.
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Run as the server starts to stop, before its grace period: end streams that would
    # otherwise hold the shutdown for all of it.
    closing: list[Callable[[], None]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_cleanup(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        self.cleanups.append(cleanup)

    async def set_serving(self) -> None:
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        for close in self.closing:
            close()
        await self.server.stop(grace)
        for cleanup in self.cleanups:
            await cleanup()


async def build_server(
    bindings: Sequence[ServiceBinding],
    address: str,
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> GrpcServer:
    """Builds and starts a server on `address` ("host:0" picks a free port) with health and
    reflection. Health reports SERVING for every service once started.

    `DUCKLM_GRPC_TOKEN` and `DUCKLM_GRPC_TLS_CERT`/`_KEY` turn on the token check and TLS
    (services/common/auth.py); with tracing on, each call continues its caller's trace."""
    security = GrpcSecurity.from_env()
    # Metrics first: calls the token check refuses are counted too.
    # Tracing (services/common/tracing.py) only while it is on: otherwise no interceptor at all.
    tracing = [TracingServerInterceptor()] if tracing_on() else []
    server = grpc.aio.server(
        interceptors=[GrpcMetricsInterceptor(), *security.server_interceptors(), *tracing, *interceptors]
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = tuple(binding.full_name for binding in bindings)
    for binding in bindings:
        binding.add(binding.servicer, server)
    # Reflection with the protos' comments, so `grpcurl describe` documents every call.
    add_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    credentials = security.server_credentials()
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind gRPC server to {address}")
    await server.start()
    running = GrpcServer(server=server, port=port, health=health_servicer, service_names=names)
    await running.set_serving()
    return running


async def serve(
    start: Callable[[], Awaitable[GrpcServer]],
    *,
    name: str,
    grace: float = 5.0,
) -> None:
    """Starts a server with `start()`, waits for SIGTERM or SIGINT, then shuts down gracefully.

    A bad setting or config file ends the process with its message (which names the variable or
    the file and line) and exit code 2, not a traceback."""
    stop_tracing = configure_tracing(name)  # OTLP export when DUCKLM_OTEL_ENDPOINT is set
    try:
        running = await start()
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    running.add_cleanup(await serve_metrics(name))  # /metrics on DUCKLM_<NAME>_METRICS_ADDRESS, if set
    if stop_tracing is not None:
        running.add_cleanup(stop_tracing)
    log.info("%s serving gRPC on port %d", name, running.port)
    print(f"{name} listening on port {running.port}", flush=True)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await stop_requested.wait()
    log.info("%s shutting down", name)
    await running.stop(grace)
