"""Optional authentication and TLS between DuckLM's gRPC services and their clients.

Both are off by default (every service binds to loopback) and are turned on for every service
and client at once by environment variables:

- `DUCKLM_GRPC_TOKEN`: a shared secret. Servers then refuse any call without the metadata
  `authorization: Bearer <token>` (UNAUTHENTICATED); clients opened by `open_channel` send it.
- `DUCKLM_GRPC_TLS_CERT` and `DUCKLM_GRPC_TLS_KEY`: PEM files; servers then listen with TLS only.
- `DUCKLM_GRPC_TLS_CA`: the PEM certificate(s) clients trust; clients then connect with TLS.

`grpc.health.v1.Health` stays reachable without the token: probes (the launcher, Kubernetes'
gRPC probes, load balancers) cannot carry a secret, and health tells a caller only whether a
service answers. Everything else, server reflection included, needs the token.

The approver credential is a second, separate secret: `DUCKLM_APPROVER_TOKEN` (or a file named
by `DUCKLM_APPROVER_TOKEN_FILE`). Only the human's side holds it (the gateway and the CLI; the
launcher gives it to them and to the tools service, never to the runtime). The tools service
accepts Approve and Deny only with it, in the metadata `ducklm-approver-token`; without it
configured, nobody can approve at all. `Approvers.principal` names who decided from the
credential (and the client's `ducklm-approver-via` label), never from a request field.

This module must never log or echo a token.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from services.common.call_hooks import metadata_interceptors
from services.common.config import ConfigError
from services.common.errors import InvalidArgument, PermissionDenied

__all__ = [
    "APPROVER_TOKEN_KEY",
    "APPROVER_VIA_KEY",
    "MIN_APPROVER_TOKEN_CHARS",
    "OPEN_METHOD_PREFIXES",
    "Approvers",
    "GrpcSecurity",
    "TokenAuthInterceptor",
    "approver_metadata",
    "approver_token_from_env",
    "client_token_interceptors",
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# Methods every caller may use without the token (see the module docstring for why).
OPEN_METHOD_PREFIXES: tuple[str, ...] = ("/grpc.health.v1.Health/",)

_REFUSAL = (
    "this DuckLM service requires a token: set DUCKLM_GRPC_TOKEN for the client to the same value "
    "as the service's (sent as 'authorization: Bearer ...' metadata)"
)


def _read_pem(variable: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}={path} cannot be read: {exc.strerror}") from exc


@dataclass(frozen=True)
class GrpcSecurity:
    """What `DUCKLM_GRPC_*` asks for: a shared token, server TLS, client TLS (each optional)."""

    token: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GrpcSecurity:
        env = os.environ if environ is None else environ
        security = cls(
            token=env.get("DUCKLM_GRPC_TOKEN", ""),
            tls_cert=env.get("DUCKLM_GRPC_TLS_CERT", ""),
            tls_key=env.get("DUCKLM_GRPC_TLS_KEY", ""),
            tls_ca=env.get("DUCKLM_GRPC_TLS_CA", ""),
        )
        if bool(security.tls_cert) != bool(security.tls_key):
            raise ConfigError("set both DUCKLM_GRPC_TLS_CERT and DUCKLM_GRPC_TLS_KEY for TLS, or neither")
        return security

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """TLS credentials for a server's port, or None for plaintext."""
        if not self.tls_cert:
            return None
        key = _read_pem("DUCKLM_GRPC_TLS_KEY", self.tls_key)
        chain = _read_pem("DUCKLM_GRPC_TLS_CERT", self.tls_cert)
        return grpc.ssl_server_credentials([(key, chain)])

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials trusting DUCKLM_GRPC_TLS_CA, or None for plaintext."""
        if not self.tls_ca:
            return None
        return grpc.ssl_channel_credentials(root_certificates=_read_pem("DUCKLM_GRPC_TLS_CA", self.tls_ca))

    def server_interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        return [TokenAuthInterceptor(self.token)] if self.token else []

    def client_interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        return client_token_interceptors(self.token) if self.token else []


def _bearer_matches(metadata: Sequence[Any] | None, token: str) -> bool:
    expected = f"Bearer {token}".encode()
    for key, value in metadata or ():
        if key == "authorization":
            given = value.encode() if isinstance(value, str) else bytes(value)
            # Constant-time: the comparison must not tell a caller how much of the token it got right.
            if hmac.compare_digest(given, expected):
                return True
    return False


async def _refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _REFUSAL)


def _refusing_handler(handler: grpc.RpcMethodHandler[Req, Resp]) -> grpc.RpcMethodHandler[Req, Resp]:
    """A handler of the same shape as `handler` that only refuses the call."""
    codecs: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_refuse, **codecs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_refuse, **codecs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_refuse, **codecs)
    return grpc.unary_unary_rpc_method_handler(_refuse, **codecs)


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call without `authorization: Bearer <token>`, except OPEN_METHOD_PREFIXES."""

    def __init__(self, token: str, open_prefixes: Sequence[str] = OPEN_METHOD_PREFIXES) -> None:
        if not token:
            raise ValueError("TokenAuthInterceptor needs a non-empty token")
        self._token = token
        self._open = tuple(open_prefixes)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Req, Resp] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Req, Resp] | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(self._open):
            return handler
        if _bearer_matches(handler_call_details.invocation_metadata, self._token):
            return handler
        return _refusing_handler(handler)


def client_token_interceptors(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding `authorization: Bearer <token>` to every outgoing call."""
    header = [("authorization", f"Bearer {token}")]
    return metadata_interceptors(lambda: header)


# -- the approver credential -----------------------------------------------------------------

APPROVER_TOKEN_KEY = "ducklm-approver-token"
APPROVER_VIA_KEY = "ducklm-approver-via"
MIN_APPROVER_TOKEN_CHARS = 16
_VIA = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def approver_token_from_env(environ: Mapping[str, str] | None = None) -> str:
    """`DUCKLM_APPROVER_TOKEN`, else the first line of the file `DUCKLM_APPROVER_TOKEN_FILE`
    names, else "" (no approver: nobody can approve)."""
    env = os.environ if environ is None else environ
    token = env.get("DUCKLM_APPROVER_TOKEN", "")
    path = env.get("DUCKLM_APPROVER_TOKEN_FILE", "")
    if not token and path:
        token = _read_pem("DUCKLM_APPROVER_TOKEN_FILE", path).decode("utf-8", "replace").strip()
    return token


def approver_metadata(token: str, via: str) -> tuple[tuple[str, str], ...]:
    """The metadata a human-side client sends with Approve and Deny: the credential and a short
    label of the way the human decided (e.g. "webchat", "cli")."""
    return ((APPROVER_TOKEN_KEY, token), (APPROVER_VIA_KEY, via))


def _metadata_value(metadata: Iterable[Any] | None, key: str) -> bytes | None:
    for name, value in metadata or ():
        if name == key:
            return value.encode() if isinstance(value, str) else bytes(value)
    return None


@dataclass(frozen=True)
class Approvers:
    """Who may decide approvals: the holder of the approver token, and only them."""

    token: str = ""

    def __post_init__(self) -> None:
        if self.token and len(self.token) < MIN_APPROVER_TOKEN_CHARS:
            raise ConfigError(
                f"DUCKLM_APPROVER_TOKEN must be at least {MIN_APPROVER_TOKEN_CHARS} characters (use a random one)"
            )

    def principal(self, metadata: Iterable[Any] | None) -> str:
        """The name a decision is recorded under, or PermissionDenied when the caller does not
        hold the approver credential (the runtime never does)."""
        if not self.token:
            raise PermissionDenied(
                "no approver credential is configured for this tools service, so nobody can decide "
                "approvals: set DUCKLM_APPROVER_TOKEN for it and for the gateway or CLI (`make run` "
                "generates one)",
                reason="APPROVER_NOT_CONFIGURED",
            )
        given = _metadata_value(metadata, APPROVER_TOKEN_KEY)
        # Constant-time: the comparison must not tell a caller how much of the token it got right.
        if given is None or not hmac.compare_digest(given, self.token.encode()):
            raise PermissionDenied(
                "only a human's client may approve or deny: send the approver credential "
                f"(metadata '{APPROVER_TOKEN_KEY}', DUCKLM_APPROVER_TOKEN); the runtime never holds it",
                reason="APPROVER_REQUIRED",
            )
        via = (_metadata_value(metadata, APPROVER_VIA_KEY) or b"grpc").decode("utf-8", "replace")
        if not _VIA.match(via):
            raise InvalidArgument(
                f"metadata '{APPROVER_VIA_KEY}' must be a short lower-case label such as 'cli' or 'webchat'"
            )
        return f"human via {via}"
