"""The one place that maps gRPC status codes to HTTP, and the JSON error body every route uses:
`{"error": {"code": "...", "message": "...", "service"?: "...", "reason"?: "..."}}`.

`code` is the gRPC status name (or a gateway code such as UNAUTHENTICATED); `service` names the
backend that answered (or did not); `reason` is the backend's machine-readable reason
(e.g. EMBEDDINGS_DISABLED), when it gave one.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "EXCEPTION_HANDLERS",
    "HTTP_STATUS",
    "ApiError",
    "BackendError",
    "backend_error_response",
    "call",
    "error_body",
    "error_response",
]

T = TypeVar("T")

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    # The backend failed (it is not the gateway's own error): Bad Gateway.
    grpc.StatusCode.UNKNOWN: 502,
    grpc.StatusCode.INTERNAL: 502,
    grpc.StatusCode.DATA_LOSS: 502,
    # The backend is down, too slow, or went away mid-call: Service Unavailable, naming it.
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
    grpc.StatusCode.CANCELLED: 503,
}

_UNREACHABLE = {
    grpc.StatusCode.UNAVAILABLE: "{service} service is unavailable: {details}",
    grpc.StatusCode.DEADLINE_EXCEEDED: "{service} service did not answer in time: {details}",
    grpc.StatusCode.CANCELLED: "{service} service dropped the call: {details}",
}


class ApiError(Exception):
    """A request the gateway refuses itself (bad JSON, missing field, wrong token, …)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class BackendError(Exception):
    """A backend call failed; carries which service, for the error message."""

    def __init__(self, service: str, error: grpc.aio.AioRpcError) -> None:
        super().__init__(f"{service}: {error.code().name}: {error.details()}")
        self.service = service
        self.error = error

    @property
    def reason(self) -> str:
        for key, value in self.error.initial_metadata() or ():
            if key == "ducklm-error-reason":
                return str(value)
        return ""

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.error.code(), 502)

    def body(self) -> dict[str, dict[str, str]]:
        code = self.error.code()
        details = self.error.details() or code.name
        template = _UNREACHABLE.get(code, "{details}")
        return error_body(
            code.name, template.format(service=self.service, details=details), self.service, self.reason
        )


async def call(service: str, pending: Awaitable[T]) -> T:
    """Awaits a backend call; a gRPC failure becomes a BackendError naming `service`."""
    try:
        return await pending
    except grpc.aio.AioRpcError as exc:
        raise BackendError(service, exc) from exc


def error_body(code: str, message: str, service: str = "", reason: str = "") -> dict[str, dict[str, str]]:
    error = {"code": code, "message": message}
    if service:
        error["service"] = service
    if reason:
        error["reason"] = reason
    return {"error": error}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def backend_error_response(exc: BackendError) -> JSONResponse:
    # A client may try again shortly when the backend is only down or busy.
    headers = {"Retry-After": "2"} if exc.status in (429, 503) else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": 'Bearer realm="ducklm"'} if exc.status == 401 else None
    return error_response(exc.status, exc.code, exc.message, headers)


async def _backend_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    return backend_error_response(exc)


_HTTP_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(
        exc.status_code, _HTTP_CODES.get(exc.status_code, "HTTP_ERROR"), str(exc.detail), headers
    )


EXCEPTION_HANDLERS = {ApiError: _api_error, BackendError: _backend_error, HTTPException: _http_error}
