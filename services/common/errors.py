"""Typed domain errors and the one place that turns them into gRPC status codes.

Domain code raises these; servicer methods are wrapped with `grpc_errors`, which aborts the
call with the matching status code and the error's message. Nothing else maps errors.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

__all__ = [
    "Aborted",
    "AlreadyExists",
    "DeadlineExceeded",
    "DuckLMError",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unavailable",
    "grpc_errors",
]

log = logging.getLogger(__name__)


class DuckLMError(Exception):
    """Base of every error a DuckLM service reports to its caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        # A short machine-readable reason (e.g. "EMBEDDINGS_DISABLED") a client can act on.
        self.reason = reason


class InvalidArgument(DuckLMError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DuckLMError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DuckLMError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Aborted(DuckLMError):
    """A concurrent change won (e.g. another message reopened the task first): try again later."""

    code = grpc.StatusCode.ABORTED


class FailedPrecondition(DuckLMError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DuckLMError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(DuckLMError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(DuckLMError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ResourceExhausted(DuckLMError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


F = TypeVar("F", bound=Callable[..., Any])


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: DuckLMError) -> None:
    if exc.reason:
        await context.send_initial_metadata((("ducklm-error-reason", exc.reason),))
    await context.abort(exc.code, exc.message)


def grpc_errors(method: F) -> F:
    """Wraps a servicer method (unary or server-streaming) so DuckLMErrors become statuses.

    Any other exception is logged with its traceback and reported as INTERNAL without details.
    """
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for item in method(self, request, context):
                    yield item
            except DuckLMError as exc:
                await _abort(context, exc)
            except (grpc.aio.AbortError, GeneratorExit):
                raise
            except Exception:
                log.exception("unexpected error in %s", method.__qualname__)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error; see service log")

        return stream_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary_wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except DuckLMError as exc:
            await _abort(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unexpected error in %s", method.__qualname__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see service log")

    return unary_wrapper  # type: ignore[return-value]


AsyncFn = Callable[..., Awaitable[Any]]
