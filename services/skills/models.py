"""The plain records the skills service keeps: experiences of finished tasks and skill proposals.

The servicer translates these to and from protobuf messages; nothing here imports generated code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.skills.validation import Problem

__all__ = ["Experience", "ExperienceFilter", "Outcome", "Proposal", "ProposalState"]


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ProposalState(StrEnum):
    PENDING = "pending"
    # Kept with its problems; can be rejected, never promoted.
    INVALID = "invalid"
    PROMOTED = "promoted"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Experience:
    """What one finished task did. `id` may be chosen by the caller (so a retried
    RecordExperience stores it once); `create_time` is set by the service."""

    task_id: str
    goal: str
    outcome: Outcome | None
    steps: int = 0
    tools_used: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    duration_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    final_answer: str = ""
    skills_used: tuple[str, ...] = ()
    # The task's last event this experience covers (0: not recorded).
    last_event_seq: int = 0
    id: str = ""
    create_time: datetime | None = None


@dataclass(frozen=True)
class ExperienceFilter:
    """Empty fields match everything; `tool` keeps experiences that used that tool."""

    outcome: Outcome | None = None
    task_id: str = ""
    tool: str = ""


@dataclass(frozen=True)
class Proposal:
    """A SKILL.md draft and the evidence it rests on; becomes a skill only when promoted."""

    id: str
    name: str
    skill_md: str
    state: ProposalState
    problems: tuple[Problem, ...]
    experience_ids: tuple[str, ...]
    # "task_id:seq" of the runtime events the draft rests on.
    event_refs: tuple[str, ...]
    rationale: str
    create_time: datetime
    decide_time: datetime | None = None
    decided_by: str = ""
    reason: str = ""
