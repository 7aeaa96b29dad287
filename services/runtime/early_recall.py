"""The turn's automatic memory recall, off the way to the first token.

The recall starts as the turn starts and runs while the loop builds the first step's context.
The first step waits for it at most `wait_seconds` (recall_wait_ms); a recall not ready by then
is used from the next step on, or, at the latest, recorded before the first directive is carried
out, so every turn's log holds its recall before any action and before the turn ends.

One per task of the turns under way. Holds no memory itself and never calls the memory service
(the loop hands over the call); a recall still running when its turn fails is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["EarlyRecalls"]

RecallData = TypeVar("RecallData")


class _Pending(Generic[RecallData]):
    def __init__(self, work: Coroutine[Any, Any, RecallData]) -> None:
        self.job: asyncio.Task[RecallData] = asyncio.create_task(work, name="early-recall")
        self.waited = False


class EarlyRecalls(Generic[RecallData]):
    def __init__(self, wait_seconds: float) -> None:
        self._wait = wait_seconds
        self._pending: dict[str, _Pending[RecallData]] = {}

    def start(self, task_id: str, work: Coroutine[Any, Any, RecallData]) -> None:
        """Starts the turn's recall (`work` returns its memory_recalled event)."""
        self.drop(task_id)
        self._pending[task_id] = _Pending(work)

    async def take(self, task_id: str, *, settle: bool = False) -> RecallData | None:
        """The recall's event data once it is ready, handed out once; None while it runs (or
        when there is none). The first call waits for it at most `wait_seconds`, later ones
        not at all; with `settle`, waits until it ends."""
        pending = self._pending.get(task_id)
        if pending is None:
            return None
        if not pending.job.done() and (settle or not pending.waited):
            pending.waited = True
            # shield: a wait that times out must not cancel the recall itself.
            try:
                await asyncio.wait_for(asyncio.shield(pending.job), None if settle else self._wait)
            except TimeoutError:
                return None
        if not pending.job.done():
            return None
        del self._pending[task_id]
        return pending.job.result()

    def drop(self, task_id: str) -> None:
        """Cancels the task's recall, if one is still under way (its turn ended without it)."""
        pending = self._pending.pop(task_id, None)
        if pending is not None:
            pending.job.cancel()
