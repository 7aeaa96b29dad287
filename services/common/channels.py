"""Client channels from one service to another: deadlines are the caller's, retries only on
UNAVAILABLE and only for idempotent methods, through the channel's service config.

`DUCKLM_GRPC_TOKEN` and `DUCKLM_GRPC_TLS_CA` make every channel send the token and use TLS
(services/common/auth.py); with tracing on (services/common/tracing.py) every call carries the
caller's trace context."""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

from services.common.auth import GrpcSecurity
from services.common.trace_interceptors import client_trace_interceptors
from services.common.tracing import tracing_on

__all__ = ["open_channel"]


def _names(entries: Sequence[str]) -> list[dict[str, str]]:
    """Service-config names: "pkg.Service" (every method) or "pkg.Service/Method" (one)."""
    names = []
    for entry in entries:
        service, _, method = entry.partition("/")
        names.append({"service": service, "method": method} if method else {"service": service})
    return names


def open_channel(address: str, *, idempotent_services: Sequence[str] = ()) -> grpc.aio.Channel:
    """A channel to `address` that retries calls of `idempotent_services` (a service's full name,
    or "service/Method" for one method) on UNAVAILABLE, with backoff; with TLS and the shared
    token when DUCKLM_GRPC_TLS_CA / DUCKLM_GRPC_TOKEN are set.

    A peer that restarts is reconnected to within about a second of coming back (gRPC's own
    reconnect backoff would otherwise grow to two minutes), so callers that wait for the channel
    to be ready resume promptly.

    Calls are spread round robin over every address the target names or resolves to, skipping
    those that are down: "ipv4:10.0.0.1:50051,10.0.0.2:50051" lists replicas, and
    "dns:///runtime:50051" finds them by DNS (a Kubernetes headless Service, compose replicas)."""
    config = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": _names(idempotent_services),
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
        if idempotent_services
        else []
    }
    security = GrpcSecurity.from_env()
    options = [
        ("grpc.service_config", json.dumps(config)),
        ("grpc.enable_retries", 1),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    # With tracing on, each call carries the caller's trace context (trace_interceptors.py).
    interceptors = [*security.client_interceptors(), *(client_trace_interceptors() if tracing_on() else [])]
    credentials = security.channel_credentials()
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
