"""Live events for the PostgreSQL task store: the local subscribers of each task, fed both by
this process's own commits and by other runtime replicas' commits, heard through LISTEN/NOTIFY.

The log stays the source of truth: a notification only says "task T has an event at seq N";
the events themselves are read back from the table, from the last seq this process delivered,
so a notification lost while the connection was down costs nothing (the next one, or the
catch-up after reconnecting, reads them all). Subscribers may see an event twice (a local
commit and its notification); they drop seqs they already have. This module never writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import psycopg

from services.common.errors import Unavailable
from services.runtime.records import EventRecord
from services.runtime.subscribers import Subscribers

__all__ = ["CHANNEL", "LiveEvents"]

log = logging.getLogger(__name__)

# The channel committed events are announced on (payload "<task_id> <first seq> <last seq>",
# one per statement and task, by a trigger).
CHANNEL = "ducklm_events"
# How long the listener waits before reconnecting after the database went away.
RECONNECT_SECONDS = 1.0

# Reads a task's stored events after a seq (the store's own read).
ReadAfter = Callable[[str, int], Awaitable[list[EventRecord]]]


class LiveEvents(Subscribers):
    """Subscriber queues per task, and the listener that brings other replicas' events."""

    def __init__(self, dsn: str, read_after: ReadAfter, heard: Callable[[str, int], None]) -> None:
        super().__init__()
        self._dsn = dsn
        self._read_after = read_after
        # Told of every announced commit (task id, last seq), subscribed or not.
        self._heard = heard
        # The highest stored seq handed to the subscribers of each subscribed task.
        self._delivered: dict[str, int] = {}
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="event-listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    def _last_gone(self, task_id: str) -> None:
        self._delivered.pop(task_id, None)

    def publish(self, event: EventRecord) -> None:
        if event.seq and event.task_id in self._subscribers:
            self._delivered[event.task_id] = max(self._delivered.get(event.task_id, 0), event.seq)
        super().publish(event)

    async def _catch_up(self, task_id: str, first: int, last: int) -> None:
        """Delivers the task's stored events this process has not delivered yet, up to at
        least `last` (announced as committed from `first` on)."""
        if task_id not in self._subscribers:
            return
        delivered = self._delivered.get(task_id)
        if delivered is not None and last <= delivered:
            return
        # Subscribed before these events but nothing delivered since: the subscriber read the
        # backlog itself, so starting at the first announced seq leaves no gap.
        start = delivered if delivered is not None else first - 1
        for event in await self._read_after(task_id, start):
            self.publish(event)

    async def _listen(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
            except psycopg.Error as exc:
                log.warning("cannot listen for events (%s); retrying", exc)
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                # What was committed while no one listened.
                for task_id, delivered in list(self._delivered.items()):
                    await self._catch_up(task_id, delivered + 1, delivered + 1)
                async for notice in conn.notifies():
                    with contextlib.suppress(ValueError):
                        task_id, first, last = notice.payload.split(" ")
                        self._heard(task_id, int(last))
                        await self._catch_up(task_id, int(first), int(last))
            except (psycopg.Error, Unavailable) as exc:
                self.listening.clear()
                log.warning("stopped hearing events (%s); reconnecting", exc)
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                await conn.close()
