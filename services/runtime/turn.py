"""The state of a task's current turn, carried in memory while the loop runs it.

The loop reads the task's log once, when a turn starts or resumes (`TurnState.from_log`), and
then adds each event it commits (`add`), so a step never re-reads or re-scans the log: the
turn's start, its user message, the skill in use, its steps, its tool calls and its last result
are kept up to date event by event. A step is one decision of the model: a directive, or an
output that was not a valid one (the meaning of `TaskRecord.steps` and of the step limit).
Nothing here touches the store or a service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from services.runtime import events as ev
from services.runtime.context import REPEATED_CALL
from services.runtime.experience import is_step
from services.runtime.records import EventRecord

__all__ = ["ActiveSkill", "FollowUp", "TurnState"]

FollowUp = Literal["free", "look", "answer"]


@dataclass(frozen=True)
class ActiveSkill:
    """The skill loaded in the current turn: what it loaded, and the seq of that event."""

    used: ev.SkillUsed
    seq: int


def call_key(tool: str, arguments: dict[str, Any] | None) -> tuple[str, str]:
    """A tool call by name and canonical arguments: the same call made twice has the same key."""
    return tool, json.dumps(arguments or {}, sort_keys=True)


@dataclass
class TurnState:
    task_id: str
    # The whole log so far (what the prompt is built from), in order.
    events: list[EventRecord] = field(default_factory=list)
    # The seq of the turn's user message (0 before the first) and the message.
    start: int = 0
    message: ev.UserMessage | None = None
    skill: ActiveSkill | None = None
    # Tool calls made since the skill in use was loaded.
    calls_since_skill: int = 0
    steps: int = 0
    calls: list[tuple[str, str]] = field(default_factory=list)
    last_result: ev.ToolResult | None = None
    # Whether the turn has called the model or recalled memory yet (a resumed turn has).
    begun: bool = False
    # Prompt and completion tokens of every model call of the task (what its token budget counts).
    tokens_spent: int = 0

    @classmethod
    def from_log(cls, task_id: str, events: list[EventRecord]) -> TurnState:
        turn = cls(task_id=task_id)
        for event in events:
            turn.add(event)
        return turn

    def add(self, event: EventRecord) -> None:
        """Takes in an event as it is committed."""
        self.events.append(event)
        payload = event.payload
        if isinstance(payload, ev.UserMessage):
            self.start, self.message, self.skill = event.seq, payload, None
            self.calls_since_skill, self.steps, self.calls, self.last_result, self.begun = 0, 0, [], None, False
        elif isinstance(payload, ev.SkillUsed) and not payload.error and not payload.file:
            # A file read (`file`) belongs to the skill in use; it does not start a new one.
            self.skill, self.calls_since_skill = ActiveSkill(used=payload, seq=event.seq), 0
        elif isinstance(payload, ev.ToolCall):
            self.calls.append(call_key(payload.tool, payload.arguments))
            self.calls_since_skill += 1
        elif isinstance(payload, ev.ToolResult):
            self.last_result = payload
        elif isinstance(payload, ev.ModelCall | ev.MemoryRecalled):
            self.begun = True
        if isinstance(payload, ev.ModelCall):
            self.tokens_spent += payload.usage.prompt_tokens + payload.usage.completion_tokens
        if is_step(payload):
            self.steps += 1

    @property
    def is_new(self) -> bool:
        """A turn whose user message has been taken in and nothing done about it yet."""
        return bool(self.start) and not self.begun

    @property
    def wants_memory(self) -> bool:
        return self.message is None or self.message.wants_memory

    def skill_needs_tool_calls(self) -> bool:
        """The skill in use asks for tool calls before an answer, and has not had them yet."""
        return self.skill is not None and self.calls_since_skill < (self.skill.used.min_tool_calls or 0)

    @property
    def tools_called(self) -> list[str]:
        """The tools the turn has called so far, in order."""
        return [tool for tool, _ in self.calls]

    def made_call(self, tool: str, arguments: dict[str, Any] | None) -> bool:
        return call_key(tool, arguments) in self.calls

    def repeated_last_call(self) -> bool:
        """The turn's last event says the model repeated a call: its next step may only answer."""
        last = self.events[-1] if self.events else None
        return (
            last is not None and last.seq > self.start
            and isinstance(last.payload, ev.Error) and last.payload.code == REPEATED_CALL
        )

    def follow_up(self) -> FollowUp:
        """What the step after the turn's last tool result may do, for a small model that would
        otherwise wander off a result it has: after a listing of paths, look further (read-only
        tools) or answer; after any other result that succeeded, answer; after a failure (or no
        result yet), anything."""
        result = self.last_result
        if result is None or not result.ok:
            return "free"
        listing = isinstance(result.result.get("entries"), list) or isinstance(result.result.get("matches"), list)
        return "look" if listing else "answer"
