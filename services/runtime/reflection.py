"""Reflection: asks the model (role `reasoning`, else `chat`) whether a reusable skill emerges
from finished tasks, and if so proposes it to the skills service as a SKILL.md draft.

The model sees each task's steps as the log holds them (tool calls with their arguments and
outcomes, skills used), and the proposal cites exactly those events as its evidence. The draft
goes into the proposals area, never straight into the registry: a human promotes it. Every run,
with or without a proposal, is recorded in the runtime's database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from services.common.json_schemas import validator_for
from services.runtime import events as ev
from services.runtime.model_client import ChatModel
from services.runtime.peers import Peers
from services.runtime.storage import TaskStorage
from services.runtime.store import EventRecord

__all__ = ["REFLECTION_SCHEMA", "Reflection", "reflect", "render_skill_md"]

REFLECTION_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"decision": {"const": "none"}, "reason": {"type": "string", "minLength": 1, "maxLength": 300}},
            "required": ["decision", "reason"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "decision": {"const": "propose"},
                "name": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "minLength": 1, "maxLength": 64},
                "description": {"type": "string", "minLength": 1, "maxLength": 300},
                "steps": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": 200},
                    "minItems": 1,
                    "maxItems": 8,
                },
            },
            "required": ["decision", "name", "description", "steps"],
            "additionalProperties": False,
        },
    ]
}

_INSTRUCTION = (
    "You review finished tasks of an AI assistant. Each task lists its goal and the steps it took "
    "(tool calls with arguments and results). If the task succeeded with tool calls and the same kind "
    "of task will come again, propose a skill: a lowercase-hyphenated name, a one-sentence description "
    "of when to use it, and the steps, naming the tools and arguments that worked. Otherwise answer "
    "decision none with the reason. Reply with JSON only."
)
# Steps of one task shown to the model, and characters of one step's arguments or result.
STEPS_SHOWN = 12
STEP_CHARS = 160


@dataclass
class Reflection:
    proposal_id: str
    outcome: str


def render_skill_md(name: str, description: str, steps: list[str]) -> str:
    """A SKILL.md in the Agent Skills format (front matter, then Markdown)."""
    front = json.dumps(description)  # a JSON string is a valid YAML scalar, whatever it holds
    body = "\n".join(f"{index}. {step}" for index, step in enumerate(steps, start=1))
    return f"---\nname: {name}\ndescription: {front}\n---\n# {name}\n\n{description}\n\n## Steps\n{body}\n"


def _describe(experience: dict[str, Any], steps: list[EventRecord]) -> str:
    lines = [
        f"- goal: {experience.get('goal', '')}",
        f"  outcome: {experience.get('outcome', '')}",
        "  steps:" if steps else "  steps: none (answered without tools)",
    ]
    lines += [f"    {number}. {_step(event)}" for number, event in enumerate(steps[:STEPS_SHOWN], start=1)]
    lines.append(f"  answer: {str(experience.get('final_answer', ''))[:300]}")
    return "\n".join(lines)


def _step(event: EventRecord) -> str:
    payload = event.payload
    if isinstance(payload, ev.ToolCall):
        return f"call {payload.tool} {json.dumps(payload.arguments, ensure_ascii=False)[:STEP_CHARS]}"
    if isinstance(payload, ev.ToolResult):
        if payload.ok:
            return f"{payload.tool} ok: {json.dumps(payload.result, ensure_ascii=False)[:STEP_CHARS]}"
        return f"{payload.tool} failed: {payload.error[:STEP_CHARS]}"
    assert isinstance(payload, ev.SkillUsed)
    return f"used skill {payload.skill}" + (f" (file {payload.file})" if payload.file else "")


def _is_evidence(payload: ev.Payload | ev.Unknown) -> bool:
    """A step worth citing: a tool call or result, or a skill that loaded (not a failure)."""
    if isinstance(payload, ev.ToolCall):
        return True
    return isinstance(payload, ev.ToolResult | ev.SkillUsed) and not payload.error


async def _steps(store: TaskStorage, experience: dict[str, Any]) -> list[EventRecord]:
    """The evidence events of the experience's turn: from its user message to its last event."""
    task_id = str(experience.get("task_id", ""))
    if not task_id:
        return []
    # An experience's id is "task_id:seq of its user message" (experience.py).
    start = str(experience.get("id", "")).rpartition(":")[2]
    first = int(start) if start.isdigit() else 0
    last = int(experience.get("last_event_seq") or 0)  # int64 arrives as a JSON string
    events = await store.list_events(task_id, limit=100_000)
    return [
        e for e in events
        if _is_evidence(e.payload) and e.seq >= first and (not last or e.seq <= last)
    ]


async def reflect(models: ChatModel, peers: Peers, store: TaskStorage, experience_ids: list[str]) -> Reflection:
    experiences = await peers.list_experiences(experience_ids, limit=5)
    if not experiences:
        result = Reflection(proposal_id="", outcome="no experiences to reflect on")
        await store.record_reflection(experience_ids, result.outcome, "", "")
        return result
    role = "reasoning" if models.config.role("reasoning") is not None else "chat"
    steps = [await _steps(store, experience) for experience in experiences]
    described = "\n".join(_describe(experience, shown) for experience, shown in zip(experiences, steps, strict=True))
    call = await models.chat(
        role,
        [{"role": "system", "content": _INSTRUCTION}, {"role": "user", "content": described}],
        json_schema=REFLECTION_SCHEMA,
    )
    ids = [str(e["id"]) for e in experiences]
    try:
        answer = json.loads(call.text)
        errors = list(validator_for(REFLECTION_SCHEMA).iter_errors(answer))
    except json.JSONDecodeError as exc:
        errors, answer = [exc], None
    if errors or not isinstance(answer, dict):
        result = Reflection(proposal_id="", outcome=f"no skill: the model's reflection was not valid ({errors[0]})"[:500])
    elif answer["decision"] == "none":
        result = Reflection(proposal_id="", outcome=f"no skill: {answer['reason']}")
    else:
        # The evidence is what the model was shown: each step's event in the task's log.
        refs = [f"{e.task_id}:{e.seq}" for shown in steps for e in shown[:STEPS_SHOWN]]
        proposal_id = await peers.propose_skill(
            render_skill_md(answer["name"], answer["description"], list(answer["steps"])),
            ids,
            refs,
            rationale=f"proposed by reflection over {len(ids)} experience(s)",
        )
        result = Reflection(proposal_id=proposal_id, outcome=f"proposed skill {answer['name']}")
    await store.record_reflection(ids, result.outcome, result.proposal_id, call.text)
    return result
