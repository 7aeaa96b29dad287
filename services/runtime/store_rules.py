"""What both task stores (store.py on SQLite, pg_store.py on PostgreSQL) decide the same way:
whether a task may take a new user message, and the status changes that are only a
`transition` with fixed arguments. Nothing here reads or writes the database itself.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from services.common.errors import Aborted, FailedPrecondition
from services.runtime.records import TaskRecord
from services.runtime.states import FINAL_STATES, TaskStatus

__all__ = ["StatusShortcuts", "check_can_continue"]


def check_can_continue(task: TaskRecord) -> None:
    """Raises unless `task` (read in the writing transaction) may take a new user message:
    FAILED_PRECONDITION when it ended or waits for an approval, ABORTED (TASK_BUSY) while its
    turn runs. Only a completed task is reopened."""
    if task.status in FINAL_STATES:
        raise FailedPrecondition(f"task {task.id} is {task.status.value} and cannot take new messages")
    if task.status is TaskStatus.WAITING_APPROVAL:
        raise FailedPrecondition(
            f"task {task.id} is waiting for approval {task.pending_approval_id}: approve or deny it first"
        )
    if task.status is not TaskStatus.COMPLETED:
        raise Aborted(
            f"the task is busy ({task.status.value}): send the message once it has come to rest",
            reason="TASK_BUSY",
        )


class StatusShortcuts(Protocol):
    """The status changes each store makes through its own `transition` (one transaction);
    a store subclasses this and defines `transition`."""

    async def transition(
        self,
        task_id: str,
        new: TaskStatus,
        *,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
        expect: Collection[TaskStatus] | None = None,
        reason: str = "",
        error: str = "",
        pending_approval_id: str = "",
    ) -> TaskRecord | None: ...

    async def wait_for_approval(self, task_id: str, data: dict[str, Any]) -> TaskRecord:
        """Records `approval_requested` and moves the task to waiting_approval, in one
        transaction: a crash leaves either both or neither."""
        task = await self.transition(
            task_id,
            TaskStatus.WAITING_APPROVAL,
            events=[("approval_requested", data)],
            reason="approval_requested",
            pending_approval_id=str(data["approval_id"]),
        )
        assert task is not None  # no `expect`: the transition happened or raised
        return task

    async def set_status(
        self, task_id: str, new: TaskStatus, *, reason: str = "", error: str = "",
        pending_approval_id: str = "",
    ) -> TaskRecord:
        """Moves a task to `new` if the state machine allows it, recording a status_changed event."""
        task = await self.transition(task_id, new, reason=reason, error=error, pending_approval_id=pending_approval_id)
        assert task is not None
        return task
