"""The task state machine: which status may follow which. Anything else is refused."""

from __future__ import annotations

from enum import Enum

from services.common.errors import FailedPrecondition
from services.common.vocabulary import REST_STATUSES

__all__ = ["FINAL_STATES", "REST_STATES", "TaskStatus", "check_transition"]


class TaskStatus(str, Enum):
    """Mirrors ducklm.common.v1.TaskStatus; stored in SQLite by value."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A task at rest is not being worked on: the loop has returned control to a human.
REST_STATES = frozenset(TaskStatus(word) for word in REST_STATUSES)
# A final task never runs again.
FINAL_STATES = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})

_ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.FAILED}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.WAITING_APPROVAL, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.WAITING_APPROVAL: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.FAILED}),
    # A new user message reopens a completed conversation.
    TaskStatus.COMPLETED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


def check_transition(current: TaskStatus, new: TaskStatus) -> None:
    """Raises FailedPrecondition unless `current -> new` is a legal transition."""
    if new not in _ALLOWED[current]:
        raise FailedPrecondition(f"a task cannot go from {current.value} to {new.value}")
