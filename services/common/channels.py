"""Client channels from one service to another: deadlines are the caller's, retries only on
UNAVAILABLE and only for idempotent methods, through the channel's service config."""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

__all__ = ["open_channel"]


def open_channel(address: str, *, idempotent_services: Sequence[str] = ()) -> grpc.aio.Channel:
    """An insecure channel to `address` that retries calls of `idempotent_services` on UNAVAILABLE."""
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
    return grpc.aio.insecure_channel(
        address,
        options=[("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", 1)],
    )
