"""After a restart: brings each task's status in line with its event log.

The log is the truth. A task whose log holds an approval that was requested and not yet decided
is `waiting_approval` (with that approval pending), whatever status a crash left; any other
task that was being worked on, or whose last user message has no reply yet, runs again.
Nothing here calls a model or a peer service; only the store is written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from services.common.errors import FailedPrecondition
from services.runtime import events as ev
from services.runtime.states import FINAL_STATES, TaskStatus
from services.runtime.storage import TaskStorage
from services.runtime.store import EventRecord, TaskRecord

__all__ = ["open_approval", "reconcile", "turn_is_open"]

log = logging.getLogger(__name__)

_FINAL_WORDS = frozenset(status.value for status in FINAL_STATES)


def open_approval(events: Sequence[EventRecord]) -> str:
    """The id of the approval the log requested and has neither decided nor settled, or ""."""
    requested = [e for e in events if isinstance(e.payload, ev.ApprovalRequested)]
    if not requested:
        return ""
    last = requested[-1]
    assert isinstance(last.payload, ev.ApprovalRequested)
    approval_id, call_id = last.payload.approval_id, last.payload.call_id
    for event in events:
        if event.seq <= last.seq:
            continue
        payload = event.payload
        if isinstance(payload, ev.ApprovalDecided) and payload.approval_id == approval_id:
            return ""
        if isinstance(payload, ev.ToolResult) and payload.call_id == call_id:
            return ""
        if isinstance(payload, ev.StatusChanged) and payload.to in _FINAL_WORDS:
            return ""
    return approval_id


def turn_is_open(events: Sequence[EventRecord]) -> bool:
    """Whether the last user message still waits for the reply that ends its turn."""
    for event in reversed(events):
        if isinstance(event.payload, ev.AssistantMessage):
            return False
        if isinstance(event.payload, ev.UserMessage):
            return True
    return False


async def reconcile(store: TaskStorage, task: TaskRecord) -> bool:
    """Fixes `task`'s status from its log; True when its loop must run (it is then running)."""
    if task.status in FINAL_STATES:
        return False
    events = await store.list_events(task.id, limit=1_000_000)
    approval_id = open_approval(events)
    resumed = ev.entry(ev.TaskResumed(from_seq=events[-1].seq if events else 0))
    try:
        if approval_id:
            if task.status is TaskStatus.WAITING_APPROVAL and task.pending_approval_id == approval_id:
                return False
            if task.status is not TaskStatus.RUNNING:
                await store.transition(task.id, TaskStatus.RUNNING, reason="reconciled")
            await store.transition(
                task.id, TaskStatus.WAITING_APPROVAL, events=[resumed], reason="reconciled: approval_requested",
                pending_approval_id=approval_id,
            )
            log.warning("task %s was %s with approval %s open: now waiting for it", task.id, task.status.value,
                        approval_id, extra={"task_id": task.id})
            return False
        if task.status is TaskStatus.COMPLETED and not turn_is_open(events):
            return False
        if task.status is TaskStatus.RUNNING:
            await store.append_event(task.id, *resumed)
        else:
            await store.transition(task.id, TaskStatus.RUNNING, events=[resumed], reason="resumed")
    except FailedPrecondition as exc:
        log.error("task %s cannot be reconciled: %s", task.id, exc, extra={"task_id": task.id})
        return False
    return True
