"""Turns a finished turn's events into an experience record for the skills service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ducklm.skills.v1 import skills_pb2

from services.common.protos import to_timestamp
from services.runtime.context import turn_start
from services.runtime.states import TaskStatus
from services.runtime.store import EventRecord, TaskRecord

__all__ = ["experience_from_turn"]

_OUTCOMES = {
    TaskStatus.COMPLETED: skills_pb2.OUTCOME_COMPLETED,
    TaskStatus.FAILED: skills_pb2.OUTCOME_FAILED,
    TaskStatus.CANCELLED: skills_pb2.OUTCOME_CANCELLED,
}


def experience_from_turn(task: TaskRecord, events: Sequence[EventRecord]) -> dict[str, Any] | None:
    """The fields of a skills.v1.Experience for the task's last turn, or None if not finished."""
    if task.status not in _OUTCOMES:
        return None
    start = turn_start(events)
    turn = [e for e in events if e.seq >= start]
    goal = next((str(e.data["text"]) for e in turn if e.type == "user_message"), task.title)
    calls = [e for e in turn if e.type == "model_call"]
    return {
        # One experience per turn; a retried record call stores it once.
        "id": f"{task.id}:{start}",
        "task_id": task.id,
        "goal": goal,
        "outcome": _OUTCOMES[task.status],
        "steps": sum(1 for e in calls if not e.data.get("purpose")),
        "tools_used": sorted({str(e.data["tool"]) for e in turn if e.type == "tool_call"}),
        "skills_used": sorted({str(e.data["skill"]) for e in turn if e.type == "skill_used" and not e.data.get("error")}),
        "errors": [str(e.data.get("message", "")) for e in turn if e.type == "error"][:20],
        "duration_seconds": (turn[-1].create_time - turn[0].create_time).total_seconds() if turn else 0.0,
        "prompt_tokens": sum(int(e.data["usage"]["prompt_tokens"]) for e in calls),
        "completion_tokens": sum(int(e.data["usage"]["completion_tokens"]) for e in calls),
        "final_answer": next((str(e.data["text"]) for e in reversed(turn) if e.type == "assistant_message"), ""),
        "create_time": to_timestamp(turn[-1].create_time if turn else task.update_time),
        # Bounds the evidence a skill proposal may cite from this turn.
        "last_event_seq": turn[-1].seq if turn else 0,
    }
