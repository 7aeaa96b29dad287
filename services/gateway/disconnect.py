"""Long backend calls that end when the HTTP client goes away.

A plain (non-streaming) chat may wait minutes for the model. If its client hangs up, the
gateway cancels its own gRPC call at once instead of holding it until the deadline; the DuckLM
task is not touched (it runs in the runtime's background and stays readable).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request

from services.gateway.errors import ApiError

__all__ = ["unless_disconnected"]

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, pending: Awaitable[T]) -> T:
    """Awaits `pending` (a gRPC call); if the client disconnects first, cancels it and raises."""

    async def wait() -> T:
        return await pending

    work = asyncio.create_task(wait())
    watcher = asyncio.create_task(_disconnected(request))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()
        raise
    finally:
        watcher.cancel()
    if work.done():
        return work.result()
    call: Any = pending
    if hasattr(call, "cancel"):
        call.cancel()
    work.cancel()
    # Nobody will read this answer; it only ends the request.
    raise ApiError(499, "CANCELLED", "the client closed the request")
