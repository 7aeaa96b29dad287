"""The live subscribers of each task's events: queues handed every event of a task after its
commit (or, with seq 0, events never stored, such as streamed model tokens). Both task stores
keep theirs here; pg_events.py adds the events other replicas commit. Nothing here stores an
event or reads the log.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from services.common.protos import utc_now
from services.runtime.records import EventRecord

__all__ = ["Subscribers"]


class Subscribers:
    """Subscriber queues per task."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[EventRecord]]] = defaultdict(set)

    def subscribe(self, task_id: str) -> asyncio.Queue[EventRecord]:
        """A queue that receives every event of the task published from now on."""
        queue: asyncio.Queue[EventRecord] = asyncio.Queue()
        self._subscribers[task_id].add(queue)
        return queue

    def unsubscribe(self, task_id: str, queue: asyncio.Queue[EventRecord]) -> None:
        subscribers = self._subscribers.get(task_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[task_id]
                self._last_gone(task_id)

    def _last_gone(self, task_id: str) -> None:
        """The task's last subscriber left (pg_events.py forgets what it delivered)."""

    def publish(self, event: EventRecord) -> None:
        """Hands an event to the task's subscribers (seq 0: live-only, such as model tokens)."""
        for queue in self._subscribers.get(event.task_id, ()):
            queue.put_nowait(event)

    def publish_live(self, task_id: str, event_type: str, data: dict[str, object]) -> None:
        """Sends an event to the subscribers without storing it (seq 0)."""
        self.publish(EventRecord(task_id=task_id, seq=0, type=event_type, create_time=utc_now(), data=dict(data)))
