"""Replays a task from its event log with no model server and no peer services.

The recorded model outputs, tool results, skill bodies and memories are fed back through the
real loop (context building, parsing, acting, state changes) on a scratch in-memory store, one
recorded user message at a time. The replay matches when it reproduces the same sequence of
actions (directives and refused outputs) as the original run.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.runtime.completion_client import StepScores
from services.runtime.config import Settings
from services.runtime.directives import DirectiveSchema
from services.runtime.loop import RuntimeLoop, reply_cap
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
from services.runtime.staged import StagedDecider
from services.runtime.states import FINAL_STATES, TaskStatus
from services.runtime.store import EventRecord, TaskStore

__all__ = ["ReplayResult", "actions_of", "replay_events"]


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
        if event.type == "directive":
            actions.append(json.dumps({k: v for k, v in event.data.items() if k != "raw"}, sort_keys=True))
        elif event.type == "error" and event.data.get("code") == "invalid_directive":
            actions.append(json.dumps({"invalid": event.data["output"]}))
    return actions


class RecordedModel:
    def __init__(self, config: ModelsConfig, events: Sequence[EventRecord]) -> None:
        self._config = config
        self._calls = deque(e.data for e in events if e.type == "model_call")

    @property
    def config(self) -> ModelsConfig:
        return self._config

    async def chat(self, role: str, messages: list[dict[str, str]], *, json_schema: dict[str, Any] | None = None,
                   on_token: TokenCallback | None = None, session: str = "") -> ModelCall:
        if not self._calls:
            raise ReplayExhausted("no more recorded model outputs")
        data = self._calls.popleft()
        usage = data.get("usage", {})
        return ModelCall(
            role=role, model=str(data.get("model", "")), text=str(data["output"]), latency_ms=0.0, first_token_ms=None,
            prompt_tokens=int(usage.get("prompt_tokens", 0)), completion_tokens=int(usage.get("completion_tokens", 0)),
            cached_prompt_tokens=int(usage.get("cached_prompt_tokens", 0)),
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
        named = {str(e.data["tool"]) for e in events if e.type in ("tool_call", "directive") and e.data.get("tool")}
        named |= {str(e.data.get("output", "")) for e in events if e.type == "model_call" and e.data.get("stage") == "choose"}
        self._tool_names = sorted(named - _NOT_TOOLS)
        self._results: deque[dict[str, Any]] = deque(e.data for e in events if e.type == "tool_result")
        self._skills = {e.data["skill"]: e.data for e in events if e.type == "skill_used" and not e.data.get("file")}
        self._files = {(e.data["skill"], e.data["file"]): e.data for e in events if e.type == "skill_used" and e.data.get("file")}
        self._recalls = deque(e.data for e in events if e.type == "memory_recalled")
        self._stored = deque(e.data for e in events if e.type == "memory_stored")

    async def list_tools(self) -> list[ToolSpec]:
        # Read-only, so that no step's narrowing drops one; needing approval, so that a call a
        # crash cut off is never re-run (a replay runs nothing).
        return [ToolSpec(name, "", {"type": "object"}, read_only=True, requires_approval=True) for name in self._tool_names]

    async def execute_tool(self, task_id: str, tool: str, arguments: dict[str, Any], approval_id: str = "") -> ToolOutcome:
        if not self._results:
            raise ReplayExhausted(f"no recorded result for {tool}")
        data = self._results.popleft()
        return ToolOutcome(ok=bool(data["ok"]), result=dict(data.get("result") or {}), error=str(data.get("error", "")),
                           code=str(data.get("code", "")))

    async def request_approval(self, task_id: str, tool: str, arguments: dict[str, Any]) -> ApprovalInfo:
        raise ReplayExhausted("approvals are not requested in a replay")

    async def get_approval(self, approval_id: str) -> ApprovalInfo:
        raise ReplayExhausted("approvals are not read in a replay")

    async def deny_approval(self, approval_id: str, reason: str) -> None:
        raise ReplayExhausted("approvals are not decided in a replay")

    async def list_skills(self) -> list[SkillSummary]:
        return [SkillSummary(name=name, description="") for name in sorted(self._skills)]

    async def get_skill(self, name: str) -> SkillSummary:
        data = self._skills.get(name)
        if data is None or data.get("error"):
            raise PeerError("skills", "NOT_FOUND", str((data or {}).get("error", f"no skill {name}")))
        return SkillSummary(name=name, description="", allowed_tools=tuple(data.get("allowed_tools", ())), body=str(data.get("body", "")))

    async def read_skill_file(self, name: str, path: str) -> bytes:
        data = self._files.get((name, path))
        if data is None or data.get("error"):
            raise PeerError("skills", "NOT_FOUND", str((data or {}).get("error", f"no file {path} recorded")))
        return str(data.get("body", "")).encode()

    async def remember(self, task_id: str, text: str, kind: str) -> str:
        data = self._stored.popleft() if self._stored else {}
        if data.get("error") or not data:
            raise PeerError("memory", "FAILED_PRECONDITION", str(data.get("error", "not recorded")))
        return str(data["memory_id"])

    async def recall(self, query: str, top_k: int, task_id: str = "") -> list[RecalledMemory]:
        data = self._recalls.popleft() if self._recalls else {}
        if data.get("error") or not data:
            raise PeerError("memory", "FAILED_PRECONDITION", str(data.get("error", "not recorded")))
        return [RecalledMemory(id=m["id"], text=m["text"], score=float(m["score"])) for m in data.get("memories", [])]

    async def record_experience(self, experience: dict[str, Any]) -> str:
        return ""

    async def propose_skill(self, skill_md: str, experience_ids: list[str], event_refs: list[str], rationale: str) -> str:
        return ""

    async def list_experiences(self, ids: list[str], limit: int) -> list[dict[str, Any]]:
        return []

    async def list_workspace(self, task_id: str) -> list[WorkspaceEntry]:
        raise PeerError("tools", "UNAVAILABLE", "a replay does not list the workspace")


def _was_staged(events: Sequence[EventRecord]) -> bool:
    return any(e.type == "model_call" and e.data.get("stage") for e in events)


async def replay_events(
    settings: Settings, config: ModelsConfig, schema: DirectiveSchema, events: Sequence[EventRecord]
) -> ReplayResult:
    """Re-runs the recorded task through the loop and compares the actions it takes."""
    store = await TaskStore.open(":memory:")
    try:
        uses_peers = any(e.type in ("tool_call", "skill_used", "memory_recalled", "memory_stored") for e in events)
        peers = RecordedPeers(events) if uses_peers else None
        model = RecordedModel(config, events)
        decider = None
        if _was_staged(events):
            decider = StagedDecider(model=model, system_prompt=settings.system_prompt,
                                    max_text_chars=reply_cap(settings, config), calibrate=False)
        loop = RuntimeLoop(settings, store, model, schema, peers, decider=decider)
        messages = [e.data for e in events if e.type == "user_message"]
        task = await store.create_task(str(messages[0]["text"]) if messages else "replay")
        await store.append_event(task.id, "task_created", {"message": task.title})
        for message in messages:
            if (await store.get_task(task.id)).status in FINAL_STATES:
                break
            await store.append_event(task.id, "user_message", dict(message))
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
