"""The loop's memory steps: the recall at the start of a turn, and the model's own `recall` and
`remember` actions, each recorded as an event whether it worked or not (a failure never ends the
task). A turn that asked for no memory (the user message's `memory: false`) gets an event that
says so, and the memory service is not called.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from services.runtime import events as ev
from services.runtime.config import Settings
from services.runtime.early_recall import EarlyRecalls
from services.runtime.peers import PeerError, Peers
from services.runtime.turn import TurnState

__all__ = ["MemorySteps"]

Append = Callable[[TurnState, ev.Payload], Awaitable[None]]
MEMORY_OFF = "memory is off for this conversation"


class MemorySteps:
    def __init__(self, settings: Settings, peers: Peers, append: Append) -> None:
        self._settings = settings
        self._peers = peers
        self._append = append
        self._early: EarlyRecalls[ev.MemoryRecalled] = EarlyRecalls(settings.recall_wait_ms / 1000)

    def recall_for_turn(self, turn: TurnState) -> None:
        """Starts the turn's recall off the way to the first token (early_recall.py); it is
        recorded by `record_ready` once it is."""
        if self._settings.recall_top_k == 0 or turn.message is None or not turn.message.wants_memory:
            return  # (memory off: the OpenAI-compatible endpoint's default)
        self._early.start(turn.task_id, self._recalled(turn, turn.message.text, automatic=True))

    async def record_ready(self, turn: TurnState, *, settle: bool = False) -> None:
        """Records the turn's recall if it is ready (the first call waits a little for it; with
        `settle`, until it ends)."""
        recalled = await self._early.take(turn.task_id, settle=settle)
        if recalled is not None:
            await self._append(turn, recalled)

    def drop(self, task_id: str) -> None:
        """The turn ended first: its recall, if still running, is cancelled."""
        self._early.drop(task_id)

    async def recall(self, turn: TurnState, query: str, *, automatic: bool) -> None:
        if not automatic and not turn.wants_memory:
            await self._append(turn, ev.MemoryRecalled(query=query, automatic=automatic, error=MEMORY_OFF, code="MEMORY_OFF"))
            return
        await self._append(turn, await self._recalled(turn, query, automatic=automatic))

    async def _recalled(self, turn: TurnState, query: str, *, automatic: bool) -> ev.MemoryRecalled:
        started = time.perf_counter()
        try:
            # Long-term memories and this task's own, above the memory service's threshold.
            memories = await self._peers.recall(query, self._settings.recall_top_k or 3, task_id=turn.task_id)
        except PeerError as exc:
            recalled = ev.MemoryRecalled(query=query, automatic=automatic, error=exc.message, code=exc.reason or exc.code)
        else:
            recalled = ev.MemoryRecalled(
                query=query, automatic=automatic, memory_ids=tuple(m.id for m in memories),
                memories=tuple(
                    ev.RecalledMemory(id=m.id, text=m.text, score=round(m.score, 4), scope=m.scope) for m in memories
                ),
            )
        return replace(recalled, duration_ms=round((time.perf_counter() - started) * 1000, 3))

    async def remember(self, turn: TurnState, text: str, *, kind: str) -> None:
        started = time.perf_counter()
        # What the model remembers stays in this task's scope; a person promotes it to long-term.
        stored = ev.MemoryStored(text=text, kind=kind, scope="task")
        if not turn.wants_memory:
            await self._append(turn, replace(stored, error=MEMORY_OFF, code="MEMORY_OFF"))
            return
        try:
            stored = replace(stored, memory_id=await self._peers.remember(turn.task_id, text, kind))
        except PeerError as exc:
            stored = replace(stored, error=exc.message, code=exc.reason or exc.code)
        await self._append(turn, replace(stored, duration_ms=round((time.perf_counter() - started) * 1000, 3)))

