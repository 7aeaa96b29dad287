"""Client channels from one service to another: deadlines are the caller's, retries only on
UNAVAILABLE and only for idempotent methods, through the channel's service config.

`DUCKLM_GRPC_TOKEN` and `DUCKLM_GRPC_TLS_CA` make every channel send the token and use TLS
(services/common/auth.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

from services.common.auth import GrpcSecurity

__all__ = ["open_channel"]


def open_channel(address: str, *, idempotent_services: Sequence[str] = ()) -> grpc.aio.Channel:
    """A channel to `address` that retries calls of `idempotent_services` on UNAVAILABLE; with TLS
    and the shared token when DUCKLM_GRPC_TLS_CA / DUCKLM_GRPC_TOKEN are set."""
    config = {
        "methodConfig": [
            {
                "name": [{"service": name} for name in idempotent_services],
                "retryPolicy": {
                    "maxAttempts": 4,
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
    options = [("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", 1)]
    interceptors = security.client_interceptors()
    credentials = security.channel_credentials()
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
