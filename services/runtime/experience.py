"""Turns a finished turn's events into an experience record for the skills service.

A pure function of the task and its log: nothing here calls a service or builds a proto (the
skills peer translates the record).
"""

from __future__ import annotations

from collections.abc import Sequence

from services.runtime import events as ev
from services.runtime.context import INVALID_DIRECTIVE, turn_start
from services.runtime.records import EventRecord, ExperienceRecord, TaskRecord
from services.runtime.states import TaskStatus

__all__ = ["experience_from_turn", "is_step"]

_OUTCOMES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


def is_step(payload: ev.Payload | ev.Unknown) -> bool:
    """Whether an event is one step of a turn: a directive, or an output that was not one."""
    return isinstance(payload, ev.Directive) or (isinstance(payload, ev.Error) and payload.code == INVALID_DIRECTIVE)


def experience_from_turn(task: TaskRecord, events: Sequence[EventRecord]) -> ExperienceRecord | None:
    """The task's last turn as an experience, or None if the turn has not finished."""
    if task.status not in _OUTCOMES:
        return None
    start = turn_start(events)
    turn = [e for e in events if e.seq >= start]
    payloads = [e.payload for e in turn]
    goal = next((p.text for p in payloads if isinstance(p, ev.UserMessage)), task.title)
    calls = [p for p in payloads if isinstance(p, ev.ModelCall)]
    return ExperienceRecord(
        # One experience per turn; a retried record call stores it once.
        id=f"{task.id}:{start}",
        task_id=task.id,
        goal=goal,
        outcome=task.status.value,
        steps=sum(1 for p in payloads if is_step(p)),
        tools_used=tuple(sorted({p.tool for p in payloads if isinstance(p, ev.ToolCall)})),
        skills_used=tuple(sorted({p.skill for p in payloads if isinstance(p, ev.SkillUsed) and not p.error})),
        errors=tuple(p.message for p in payloads if isinstance(p, ev.Error))[:20],
        duration_seconds=(turn[-1].create_time - turn[0].create_time).total_seconds() if turn else 0.0,
        prompt_tokens=sum(c.usage.prompt_tokens for c in calls),
        completion_tokens=sum(c.usage.completion_tokens for c in calls),
        final_answer=next((p.text for p in reversed(payloads) if isinstance(p, ev.AssistantMessage)), ""),
        create_time=turn[-1].create_time if turn else task.update_time,
        last_event_seq=turn[-1].seq if turn else 0,
    )
