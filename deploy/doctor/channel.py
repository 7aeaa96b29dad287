"""The doctor's gRPC channel: plaintext or TLS and the shared token, read from the environment
being checked (not necessarily this process's), with no retries so a dead service fails fast."""

from __future__ import annotations

import grpc

from services.common.auth import GrpcSecurity

__all__ = ["open_doctor_channel"]


def open_doctor_channel(address: str, environ: dict[str, str]) -> grpc.aio.Channel:
    security = GrpcSecurity.from_env(environ)
    host, _, port = address.rpartition(":")
    # A service bound to every interface is reached on this machine's loopback.
    if host in ("0.0.0.0", "[::]", "::"):
        address = f"127.0.0.1:{port}"
    credentials = security.channel_credentials()
    interceptors = security.client_interceptors()
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, interceptors=interceptors)
