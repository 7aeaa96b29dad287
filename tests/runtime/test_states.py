"""The task state machine refuses every transition it does not list."""

from __future__ import annotations

import itertools

import pytest

from services.common.errors import FailedPrecondition
from services.runtime.states import TaskStatus, check_transition

LEGAL = {
    ("pending", "running"), ("pending", "cancelled"), ("pending", "failed"),
    ("running", "waiting_approval"), ("running", "completed"), ("running", "failed"), ("running", "cancelled"),
    ("waiting_approval", "running"), ("waiting_approval", "cancelled"), ("waiting_approval", "failed"),
    ("completed", "running"), ("completed", "cancelled"),
}


@pytest.mark.parametrize(("current", "new"), list(itertools.product(TaskStatus, TaskStatus)))
def test_only_listed_transitions_are_allowed(current: TaskStatus, new: TaskStatus) -> None:
    if (current.value, new.value) in LEGAL:
        check_transition(current, new)
    else:
        with pytest.raises(FailedPrecondition, match=f"from {current.value} to {new.value}"):
            check_transition(current, new)
