"""The client's exceptions: one class per gRPC status a caller may want to handle, each with a
message that says which service and method failed, why, and what to try.

`error_from_rpc` is the one place that turns a `grpc.aio.AioRpcError` into one of these. The
service's `ducklm-error-reason` metadata (e.g. APPROVAL_REQUIRED) picks a narrower class.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc

__all__ = [
    "REASON_KEY",
    "AlreadyExistsError",
    "ApprovalRequiredError",
    "CancelledError",
    "DeadlineExceededError",
    "DuckLMError",
    "EmbeddingsDisabledError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "ServiceUnavailableError",
    "UnauthenticatedError",
    "error_from_rpc",
]

# The metadata key services put a machine-readable reason under (services/common/errors.py).
REASON_KEY = "ducklm-error-reason"


class DuckLMError(Exception):
    """A DuckLM call failed. `code` is the gRPC status name ("NOT_FOUND"), `reason` the
    service's machine-readable reason or "", `details` the service's own message."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "UNKNOWN",
        reason: str = "",
        details: str = "",
        service: str = "",
        method: str = "",
        address: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.details = details
        self.service = service
        self.method = method
        self.address = address


class InvalidArgumentError(DuckLMError):
    """The request was malformed (an empty message, a bad page token, ...)."""


class NotFoundError(DuckLMError):
    """No such task, approval, skill, proposal or memory."""


class AlreadyExistsError(DuckLMError):
    """The thing to create exists already (e.g. a skill of that name)."""


class FailedPreconditionError(DuckLMError):
    """The request is well-formed but cannot be done now (e.g. an approval already decided)."""


class ApprovalRequiredError(FailedPreconditionError):
    """A gated tool ran without an approval that covers the exact action."""


class EmbeddingsDisabledError(FailedPreconditionError):
    """Memory needs the runtime's `embedding` role, and config/models.yaml has none."""


class PermissionDeniedError(DuckLMError):
    """The action is outside what the policy allows."""


class UnauthenticatedError(DuckLMError):
    """The service requires a token: set DUCKLM_GRPC_TOKEN (or pass token=...)."""


class ResourceExhaustedError(DuckLMError):
    """A budget or size limit was reached."""


class DeadlineExceededError(DuckLMError):
    """The call took longer than its timeout."""


class CancelledError(DuckLMError):
    """The call was cancelled."""


class ServiceUnavailableError(DuckLMError):
    """The service could not be reached, or a service behind it could not."""


class InternalError(DuckLMError):
    """The service failed unexpectedly; its log has the details."""


_BY_CODE: dict[grpc.StatusCode, type[DuckLMError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.UNAVAILABLE: ServiceUnavailableError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
    grpc.StatusCode.UNIMPLEMENTED: InternalError,
    grpc.StatusCode.ABORTED: FailedPreconditionError,
}

_BY_REASON: dict[str, type[DuckLMError]] = {
    "APPROVAL_REQUIRED": ApprovalRequiredError,
    "EMBEDDINGS_DISABLED": EmbeddingsDisabledError,
}


def _reason(metadata_sets: Iterable[Any]) -> str:
    for metadata in metadata_sets:
        for key, value in metadata or ():
            if key == REASON_KEY:
                return value.decode() if isinstance(value, bytes) else str(value)
    return ""


def _hint(code: grpc.StatusCode, service: str, address: str) -> str:
    if code is grpc.StatusCode.UNAVAILABLE:
        return (
            f" Is the {service} service running at {address}? Start DuckLM with `ducklm up`, or "
            f"point the client elsewhere (DUCKLM_{service.upper()}_ADDRESS or --{service})."
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return " Pass a longer timeout if the work is expected to take this long."
    return ""


def error_from_rpc(exc: grpc.aio.AioRpcError, *, service: str, method: str, address: str) -> DuckLMError:
    """The exception to raise for a failed call of `service`'s `method` at `address`."""
    code = exc.code()
    details = exc.details() or ""
    reason = _reason((exc.initial_metadata(), exc.trailing_metadata()))
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, DuckLMError)
    label = f" [{reason}]" if reason else ""
    message = f"{service} {method} failed with {code.name}{label}: {details or 'no details'}.{_hint(code, service, address)}"
    return cls(
        message,
        code=code.name,
        reason=reason,
        details=details,
        service=service,
        method=method,
        address=address,
    )
