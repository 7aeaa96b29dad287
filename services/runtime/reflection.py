"""Reflection: asks the model (role `reasoning`, else `chat`) whether a reusable skill emerges
from finished tasks, and if so proposes it to the skills service as a SKILL.md draft.

The draft goes into the proposals area, never straight into the registry: a human promotes it.
Every run, with or without a proposal, is recorded in the runtime's database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from services.runtime.model_client import ChatModel
from services.runtime.peers import Peers
from services.runtime.store import TaskStore

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
    "You review finished tasks of an AI assistant. If the same kind of task will come again and a short "
    "list of steps would help, propose a skill: a lowercase-hyphenated name, a one-sentence description of "
    "when to use it, and the steps. Otherwise answer decision none with the reason. Reply with JSON only."
)


@dataclass
class Reflection:
    proposal_id: str
    outcome: str


def render_skill_md(name: str, description: str, steps: list[str]) -> str:
    """A SKILL.md in the Agent Skills format (front matter, then Markdown)."""
    front = json.dumps(description)  # a JSON string is a valid YAML scalar, whatever it holds
    body = "\n".join(f"{index}. {step}" for index, step in enumerate(steps, start=1))
    return f"---\nname: {name}\ndescription: {front}\n---\n# {name}\n\n{description}\n\n## Steps\n{body}\n"


def _describe(experience: dict[str, Any]) -> str:
    return (
        f"- goal: {experience.get('goal', '')}\n  outcome: {experience.get('outcome', '')}\n"
        f"  tools: {', '.join(experience.get('tools_used', [])) or 'none'}\n"
        f"  answer: {str(experience.get('final_answer', ''))[:300]}"
    )


async def reflect(models: ChatModel, peers: Peers, store: TaskStore, experience_ids: list[str]) -> Reflection:
    experiences = await peers.list_experiences(experience_ids, limit=5)
    if not experiences:
        result = Reflection(proposal_id="", outcome="no experiences to reflect on")
        await store.record_reflection(experience_ids, result.outcome, "", "")
        return result
    role = "reasoning" if models.config.role("reasoning") is not None else "chat"
    call = await models.chat(
        role,
        [{"role": "system", "content": _INSTRUCTION}, {"role": "user", "content": "\n".join(map(_describe, experiences))}],
        json_schema=REFLECTION_SCHEMA,
    )
    ids = [str(e["id"]) for e in experiences]
    try:
        answer = json.loads(call.text)
        errors = list(Draft202012Validator(REFLECTION_SCHEMA).iter_errors(answer))
    except json.JSONDecodeError as exc:
        errors, answer = [exc], None
    if errors or not isinstance(answer, dict):
        result = Reflection(proposal_id="", outcome=f"no skill: the model's reflection was not valid ({errors[0]})"[:500])
    elif answer["decision"] == "none":
        result = Reflection(proposal_id="", outcome=f"no skill: {answer['reason']}")
    else:
        refs = []
        for experience in experiences:
            task_id = str(experience.get("task_id", ""))
            if task_id:
                refs += [f"{task_id}:{e.seq}" for e in await store.list_events(task_id, limit=100_000) if e.type == "directive"]
        proposal_id = await peers.propose_skill(
            render_skill_md(answer["name"], answer["description"], list(answer["steps"])),
            ids,
            refs,
            rationale=f"proposed by reflection over {len(ids)} experience(s)",
        )
        result = Reflection(proposal_id=proposal_id, outcome=f"proposed skill {answer['name']}")
    await store.record_reflection(ids, result.outcome, result.proposal_id, call.text)
    return result
