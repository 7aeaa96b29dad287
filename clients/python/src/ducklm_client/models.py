"""Typed results of the client: plain frozen dataclasses, no generated proto classes but one:
an event's `payload`, the typed message the contract (common.proto) defines for its type.

Enum-valued fields are lower-case words (`TaskStatus.COMPLETED == "completed"`, an event's
`type == "model_token"`), the same words the gateway's REST API and the event log use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from google.protobuf.message import Message

__all__ = [
    "REST_STATUSES",
    "Approval",
    "ChatResult",
    "Event",
    "Memory",
    "MemoryPage",
    "Proposal",
    "Replay",
    "ScoredMemory",
    "SearchResult",
    "Skill",
    "SkillList",
    "SkillProblem",
    "Task",
    "TaskStatus",
    "Usage",
    "Validation",
]


class TaskStatus(StrEnum):
    UNSPECIFIED = "unspecified"
    PENDING = "pending"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Where a task rests until someone acts: a turn (or a stream of it) ends in one of these.
REST_STATUSES = frozenset(
    {TaskStatus.WAITING_APPROVAL, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Prompt tokens the model server took from its prompt cache.
    cached_prompt_tokens: int = 0


@dataclass(frozen=True)
class Task:
    id: str
    status: TaskStatus
    title: str
    created: datetime | None
    updated: datetime | None
    last_reply: str
    error: str
    steps: int
    usage: Usage
    # Set while the task waits for a human: the approval it waits on.
    pending_approval_id: str


@dataclass(frozen=True)
class Event:
    """One entry of a task's log. `seq` is 0 for live-only events (`model_token`).

    `payload` is the typed message of the event's type (`common_pb2.StatusChanged` for
    "status_changed", ...; the runtime reads old stored events into it too); read it, matching
    on its class. `data` is the same payload as a plain dict, kept for older callers."""

    task_id: str
    seq: int
    type: str
    created: datetime | None
    data: dict[str, Any]
    payload: Message | None = None


@dataclass(frozen=True)
class ChatResult:
    task: Task
    # The assistant's reply to this message; empty while the task waits for an approval.
    reply: str

    @property
    def task_id(self) -> str:
        return self.task.id

    @property
    def status(self) -> TaskStatus:
        return self.task.status


@dataclass(frozen=True)
class Approval:
    id: str
    task_id: str
    tool: str
    arguments: dict[str, Any]
    # "pending", "approved", "denied", "used" or "expired".
    state: str
    # "once", "task" or "task_pattern".
    scope: str
    action_hash: str
    working_directory: str
    created: datetime | None
    decided: datetime | None
    expires: datetime | None
    # The approver principal that decided, e.g. "human via cli".
    decided_by: str
    reason: str
    # What a "task_pattern" grant of this approval covers (run_command only), else "".
    pattern: str = ""


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    allowed_tools: list[str]
    license: str = ""
    compatibility: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # The Markdown instructions; only filled by `get_skill`.
    body: str = ""
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SkillProblem:
    source: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


@dataclass(frozen=True)
class SkillList:
    skills: list[Skill]
    # Skills on disk that failed validation and are not loaded.
    invalid: list[SkillProblem]


@dataclass(frozen=True)
class Validation:
    valid: bool
    problems: list[SkillProblem]
    # Let through by lenient validation (extra front-matter keys, unmapped tool names…).
    warnings: list[SkillProblem] = field(default_factory=list)


@dataclass(frozen=True)
class Proposal:
    id: str
    name: str
    # "pending", "invalid", "promoted" or "rejected".
    state: str
    skill_md: str
    problems: list[SkillProblem]
    rationale: str
    experience_ids: list[str]
    event_refs: list[str]
    created: datetime | None
    decided_by: str
    reason: str


@dataclass(frozen=True)
class Memory:
    id: str
    text: str
    task_id: str
    kind: str
    tags: list[str]
    metadata: dict[str, Any]
    created: datetime | None
    # "task" (one conversation), "long_term" (recalled in every one) or "project".
    scope: str = "task"
    project: str = ""
    updated: datetime | None = None
    collection: str = ""


@dataclass(frozen=True)
class MemoryPage:
    memories: list[Memory]
    next_page_token: str
    total: int


@dataclass(frozen=True)
class ScoredMemory:
    memory: Memory
    score: float


@dataclass(frozen=True)
class SearchResult:
    results: list[ScoredMemory]
    embedding_ms: float
    search_ms: float


@dataclass(frozen=True)
class Replay:
    # The directives the replay produced, parsed from JSON, in order.
    directives: list[dict[str, Any]]
    matches: bool
    mismatch: str
