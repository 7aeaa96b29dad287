"""Replays a task from its event log with no model server and no peer services.

The recorded model outputs, tool results, skill bodies and memories are fed back through the
real loop (context building, parsing, acting, state changes) on a scratch in-memory store, one
recorded user message at a time. The replay matches when it reproduces the same sequence of
actions (directives and refused outputs) as the original run.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from services.runtime import events as ev
from services.runtime.completion_client import StepScores
from services.runtime.config import Settings
from services.runtime.context import INVALID_DIRECTIVE
from services.runtime.directives import DirectiveSchema
from services.runtime.loop import RuntimeLoop
from services.runtime.model_client import ModelCall, TokenCallback
from services.runtime.models_config import ModelsConfig
from services.runtime.peers import (
    ApprovalInfo,
    PeerError,
    RecalledMemory,
    SkillSummary,
    ToolOutcome,
    ToolSpec,
    WorkspaceEntry,
)
from services.runtime.records import ExperienceRecord
from services.runtime.staged import StagedDecider
from services.runtime.staged_step import reply_cap
from services.runtime.states import FINAL_STATES, TaskStatus
from services.runtime.store import EventRecord, TaskStore

__all__ = ["ReplayResult", "actions_of", "replay_events"]

P = TypeVar("P")


class ReplayExhausted(Exception):
    """The replay asked for something the log does not hold (the original stopped there)."""


@dataclass
class ReplayResult:
    directives: list[str]
    matches: bool
    mismatch: str


def actions_of(events: Sequence[EventRecord]) -> list[str]:
    """The sequence of actions a run took: each directive, and each refused model output."""
    actions = []
    for event in events:
        payload = event.payload
        if isinstance(payload, ev.Directive):
            actions.append(json.dumps({"action": payload.action, **payload.fields()}, sort_keys=True))
        elif isinstance(payload, ev.Error) and payload.code == INVALID_DIRECTIVE:
            actions.append(json.dumps({"invalid": payload.output or ""}))
    return actions


def _of(events: Sequence[EventRecord], kind: type[P]) -> list[P]:
    return [e.payload for e in events if isinstance(e.payload, kind)]


class RecordedModel:
    def __init__(self, config: ModelsConfig, events: Sequence[EventRecord]) -> None:
        self._config = config
        # A replay does not calibrate (its choices are the recorded ones): calibration calls are not replayed.
        self._calls = deque(call for call in _of(events, ev.ModelCall) if call.stage != "calibrate")

    @property
    def config(self) -> ModelsConfig:
        return self._config

    async def chat(self, role: str, messages: list[dict[str, str]], *, json_schema: dict[str, Any] | None = None,
                   on_token: TokenCallback | None = None, session: str = "") -> ModelCall:
        if not self._calls:
            raise ReplayExhausted("no more recorded model outputs")
        recorded = self._calls.popleft()
        return ModelCall(
            role=role, model=recorded.model, text=recorded.output, latency_ms=0.0, first_token_ms=None,
            prompt_tokens=recorded.usage.prompt_tokens, completion_tokens=recorded.usage.completion_tokens,
            cached_prompt_tokens=recorded.usage.cached_prompt_tokens,
        )

    async def complete(
        self, role: str, prompt: str, *, json_schema: dict[str, Any] | None = None, max_tokens: int,
        temperature: float | None = None, stop: Sequence[str] = (), on_token: TokenCallback | None = None,
        copying: bool = False, session: str = "",
    ) -> ModelCall:
        return await self.chat(role, [], json_schema=json_schema, on_token=on_token)

    async def first_token_scores(
        self, role: str, prompt: str, candidates: Sequence[str], *, session: str = "",
    ) -> tuple[StepScores, ModelCall]:
        """The recorded choice scores highest; the others can never win."""
        call = await self.chat(role, [])
        return {name: 0.0 if name == call.text else -1e9 for name in candidates}, call


# What a staged choice may name that is not a tool.
_NOT_TOOLS = frozenset({"", "answer", "use_skill", "remember", "recall", "read_skill_file"})


class RecordedPeers:
    """Answers the loop's peer calls with what the log recorded, in order."""

    def __init__(self, events: Sequence[EventRecord]) -> None:
        # Every tool the run named: called, chosen in a directive, or chosen by a staged step.
        named = {p.tool for p in _of(events, ev.ToolCall)} | {p.tool or "" for p in _of(events, ev.Directive)}
        named |= {p.output for p in _of(events, ev.ModelCall) if p.stage == "choose"}
        self._tool_names = sorted(named - _NOT_TOOLS)
        self._results = deque(_of(events, ev.ToolResult))
        used = _of(events, ev.SkillUsed)
        self._skills = {p.skill: p for p in used if not p.file}
        self._files = {(p.skill, p.file): p for p in used if p.file}
        self._recalls = deque(_of(events, ev.MemoryRecalled))
        self._stored = deque(_of(events, ev.MemoryStored))

    async def list_tools(self) -> list[ToolSpec]:
        # Read-only, so that no step's narrowing drops one; needing approval, so that a call a
        # crash cut off is never re-run (a replay runs nothing).
        return [ToolSpec(name, "", {"type": "object"}, read_only=True, requires_approval=True) for name in self._tool_names]

    async def execute_tool(self, task_id: str, tool: str, arguments: dict[str, Any], approval_id: str = "") -> ToolOutcome:
        if not self._results:
            raise ReplayExhausted(f"no recorded result for {tool}")
        recorded = self._results.popleft()
        return ToolOutcome(ok=recorded.ok, result=dict(recorded.result), error=recorded.error, code=recorded.code or "")

    async def get_approval(self, approval_id: str) -> ApprovalInfo:
        raise ReplayExhausted("approvals are not read in a replay")

    async def deny_approval(self, approval_id: str, reason: str) -> None:
        raise ReplayExhausted("approvals are not decided in a replay")

    async def watch_approvals(self) -> AsyncGenerator[ApprovalInfo, None]:
        raise ReplayExhausted("approvals are not watched in a replay")

    async def list_skills(self) -> list[SkillSummary]:
        return [SkillSummary(name=name, description="") for name in sorted(self._skills)]

    async def get_skill(self, name: str) -> SkillSummary:
        recorded = self._skills.get(name)
        if recorded is None or recorded.error:
            raise PeerError("skills", "NOT_FOUND", (recorded.error or "") if recorded is not None else f"no skill {name}")
        return SkillSummary(name=name, description="", allowed_tools=recorded.allowed_tools or (), body=recorded.body or "")

    async def read_skill_file(self, name: str, path: str) -> bytes:
        recorded = self._files.get((name, path))
        if recorded is None or recorded.error:
            raise PeerError("skills", "NOT_FOUND", (recorded.error or "") if recorded is not None else f"no file {path} recorded")
        return (recorded.body or "").encode()

    async def remember(self, task_id: str, text: str, kind: str) -> str:
        recorded = self._stored.popleft() if self._stored else None
        if recorded is None or recorded.error:
            raise PeerError("memory", "FAILED_PRECONDITION", (recorded.error or "") if recorded is not None else "not recorded")
        return recorded.memory_id or ""

    async def recall(self, query: str, top_k: int, task_id: str = "") -> list[RecalledMemory]:
        recorded = self._recalls.popleft() if self._recalls else None
        if recorded is None or recorded.error:
            raise PeerError("memory", "FAILED_PRECONDITION", (recorded.error or "") if recorded is not None else "not recorded")
        return [RecalledMemory(id=m.id, text=m.text, score=m.score) for m in recorded.memories or ()]

    async def record_experience(self, experience: ExperienceRecord) -> str:
        return ""

    async def propose_skill(self, skill_md: str, experience_ids: list[str], event_refs: list[str], rationale: str) -> str:
        return ""

    async def list_experiences(self, ids: list[str], limit: int) -> list[dict[str, Any]]:
        return []

    async def list_workspace(self, task_id: str) -> list[WorkspaceEntry]:
        raise PeerError("tools", "UNAVAILABLE", "a replay does not list the workspace")


def _was_staged(events: Sequence[EventRecord]) -> bool:
    return any(call.stage for call in _of(events, ev.ModelCall))


async def replay_events(
    settings: Settings, config: ModelsConfig, schema: DirectiveSchema, events: Sequence[EventRecord]
) -> ReplayResult:
    """Re-runs the recorded task through the loop and compares the actions it takes."""
    store = await TaskStore.open(":memory:")
    try:
        uses_peers = any(isinstance(e.payload, ev.ToolCall | ev.SkillUsed | ev.MemoryRecalled | ev.MemoryStored) for e in events)
        peers = RecordedPeers(events) if uses_peers else None
        model = RecordedModel(config, events)
        decider = None
        if _was_staged(events):
            decider = StagedDecider(model=model, system_prompt=settings.system_prompt,
                                    max_text_chars=reply_cap(settings, config), calibrate=False)
        loop = RuntimeLoop(settings, store, model, schema, peers, decider=decider)
        messages = _of(events, ev.UserMessage)
        task = await store.create_task(messages[0].text if messages else "replay")
        await store.append_event(task.id, *ev.entry(ev.TaskCreated(message=task.title)))
        for message in messages:
            if (await store.get_task(task.id)).status in FINAL_STATES:
                break
            await store.append_event(task.id, *ev.entry(message))
            await store.set_status(task.id, TaskStatus.RUNNING, reason="replay")
            try:
                await loop.run_turn(task.id)
            except ReplayExhausted:
                break
            if (await store.get_task(task.id)).status is not TaskStatus.COMPLETED:
                break
        replayed = actions_of(await store.list_events(task.id, limit=1_000_000))
    finally:
        await store.close()
    recorded = actions_of(events)
    mismatch = ""
    if replayed != recorded:
        index = next((i for i, (a, b) in enumerate(zip(replayed, recorded)) if a != b), min(len(replayed), len(recorded)))
        mismatch = (
            f"action {index + 1} differs: replayed {replayed[index] if index < len(replayed) else '(nothing)'}, "
            f"recorded {recorded[index] if index < len(recorded) else '(nothing)'}"
        )
    return ReplayResult(directives=replayed, matches=not mismatch, mismatch=mismatch)
