"""The in-process feed of approval changes that WatchApprovals streams.

The approval book publishes each approval it creates, decides or uses, after the change has
committed; each watcher holds a bounded queue of its own. A watcher that falls too far behind
is cut off (its stream ends) rather than made to block the book: it reconnects and reads what it
waits for again, which is what every watcher does after a (re)connect anyway.

This module must never hold up or fail a change to an approval: publishing only enqueues.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.tools.store import ApprovalRecord

__all__ = ["ApprovalFeed", "Subscription"]

log = logging.getLogger(__name__)

# How many changes one watcher may leave unread before it is cut off.
_QUEUE_SIZE = 1000


class Subscription:
    """One watcher's queue of changes, in the order they committed; None marks the cut-off."""

    def __init__(self, task_id: str, size: int) -> None:
        self.task_id = task_id
        self._queue: asyncio.Queue[ApprovalRecord | None] = asyncio.Queue(size + 1)
        self._size = size
        self.cut_off = False

    def offer(self, record: ApprovalRecord) -> bool:
        """Queues the change if it is this watcher's; True when it cut the watcher off."""
        if self.cut_off or (self.task_id and record.task_id != self.task_id):
            return False
        if self._queue.qsize() >= self._size:
            # The one slot left is for the marker: the stream ends and its watcher resyncs.
            self.cut_off = True
            self._queue.put_nowait(None)
            return True
        self._queue.put_nowait(record)
        return False

    def end(self) -> None:
        """Ends the stream after what is queued."""
        if not self.cut_off:
            self.cut_off = True
            self._queue.put_nowait(None)

    async def changes(self) -> AsyncIterator[ApprovalRecord]:
        """The changes as they come, until the watcher is cut off."""
        while True:
            record = await self._queue.get()
            if record is None:
                return
            yield record


class ApprovalFeed:
    """Fans each approval change out to every current watcher."""

    def __init__(self, queue_size: int = _QUEUE_SIZE) -> None:
        self._subscriptions: set[Subscription] = set()
        self._queue_size = queue_size

    def publish(self, record: ApprovalRecord) -> None:
        for subscription in list(self._subscriptions):
            if subscription.offer(record):
                log.warning("an approvals watcher fell %d changes behind and was cut off", self._queue_size)

    def close(self) -> None:
        """Ends every watcher's stream (the service is stopping); they reconnect and resync."""
        for subscription in list(self._subscriptions):
            subscription.end()

    @asynccontextmanager
    async def subscribe(self, task_id: str = "") -> AsyncIterator[Subscription]:
        """A subscription to the changes of `task_id` (all with ""), from now until the block ends."""
        subscription = Subscription(task_id, self._queue_size)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    @property
    def watchers(self) -> int:
        return len(self._subscriptions)
