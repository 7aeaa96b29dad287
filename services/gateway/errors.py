"""The one place that maps gRPC status codes to HTTP, and the JSON error body every route uses:
`{"error": {"code": "...", "message": "..."}}`."""

from __future__ import annotations

import grpc
from starlette.responses import JSONResponse

__all__ = ["HTTP_STATUS", "ApiError", "error_response", "grpc_error_response"]

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
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class ApiError(Exception):
    """A request the gateway refuses before calling a backend (bad JSON, missing field…)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def grpc_error_response(exc: grpc.aio.AioRpcError, service: str) -> JSONResponse:
    code = exc.code()
    message = exc.details() or code.name
    if code is grpc.StatusCode.UNAVAILABLE:
        message = f"{service} service unavailable: {message}"
    return error_response(HTTP_STATUS.get(code, 500), code.name, message)
