"""The state of a task's current turn, carried in memory while the loop runs it.

The loop reads the task's log once, when a turn starts or resumes (`TurnState.from_log`), and
then adds each event it commits (`add`), so a step never re-reads or re-scans the log; the
state a turn ended in is kept (`RecentTurns`), so the task's next turn reads only what came
after it. The
turn's start, its user message, the skill in use, its steps, its tool calls and its last result
are kept up to date event by event. A step is one decision of the model: a directive, or an
output that was not a valid one (the meaning of `TaskRecord.steps` and of the step limit).
Nothing here touches the store or a service.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from services.runtime import events as ev
from services.runtime.context import REPEATED_CALL
from services.runtime.experience import is_step
from services.runtime.records import EventRecord
from services.runtime.workspace_entries import WorkspaceEntry

__all__ = ["ActiveSkill", "FollowUp", "RecentTurns", "TurnState"]

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
    # Where in `events` the task's last tool call is (-1: none yet).
    last_call_at: int = -1
    # The tools whose results the turn has, in order.
    results: list[str] = field(default_factory=list)
    # The workspace as listed in this run of the turn, with how many results of tools that may
    # change files the turn had by then (staged_step.py lists it again after another).
    workspace: tuple[int, tuple[WorkspaceEntry, ...]] | None = None

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
            self.start, self.message, self.skill, self.workspace, self.results = event.seq, payload, None, None, []
            self.calls_since_skill, self.steps, self.calls, self.last_result, self.begun = 0, 0, [], None, False
        elif isinstance(payload, ev.SkillUsed) and not payload.error and not payload.file:
            # A file read (`file`) belongs to the skill in use; it does not start a new one.
            self.skill, self.calls_since_skill = ActiveSkill(used=payload, seq=event.seq), 0
        elif isinstance(payload, ev.ToolCall):
            self.last_call_at = len(self.events) - 1
            self.calls.append(call_key(payload.tool, payload.arguments))
            self.calls_since_skill += 1
        elif isinstance(payload, ev.ToolResult):
            self.last_result = payload
            self.results.append(payload.tool)
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


# Reads a task's events after a seq (the store's list_events).
ReadEvents = Callable[[int], Awaitable[list[EventRecord]]]


class RecentTurns:
    """The state each task's last turn ended in (the most recent `keep` tasks), so the next turn
    continues from it and reads only the events that came after, not the whole log again.

    A state is used only while it is the log itself: events in seq order 1, 2, 3… with none
    missing (one appended by someone else while the turn ran would leave a gap). Anything else
    is read whole, as on a first start."""

    def __init__(self, keep: int = 256) -> None:
        self._keep = keep
        self._states: OrderedDict[str, TurnState] = OrderedDict()

    async def open(self, task_id: str, read_after: ReadEvents) -> TurnState:
        """The task's state for a turn that starts (or resumes) now; it is the caller's until `keep`."""
        kept = self._states.pop(task_id, None)
        if kept is not None:
            rest = await read_after(len(kept.events))
            if all(event.seq == seq for seq, event in enumerate(rest, start=len(kept.events) + 1)):
                for event in rest:
                    kept.add(event)
                kept.workspace = None  # a person may have changed files meanwhile
                return kept
        return TurnState.from_log(task_id, await read_after(0))

    def keep(self, turn: TurnState) -> None:
        """Keeps the state a turn ended in for the task's next turn."""
        if not _is_whole(turn.events):
            return
        self._states[turn.task_id] = turn
        self._states.move_to_end(turn.task_id)
        while len(self._states) > self._keep:
            self._states.popitem(last=False)

    def forget(self, task_id: str) -> None:
        self._states.pop(task_id, None)


def _is_whole(events: list[EventRecord]) -> bool:
    # Seqs are unique and rise as events are added: the last is the count only with none missing.
    return not events or events[-1].seq == len(events)
