"""What the loop records when a skill is used or one of its files is read: the data of the
`skill_used` event (events.SkillUsed), with only the part of the text that fits the body budget.

`allowed-tools` is carried as the spec means it, tools pre-approved while the skill is in use, and
never as a limit on the turn's tools. DuckLM grants nothing on its own: a tool that asks for
approval still asks (there is no setting by which a person makes a tool grantable in advance), so
pre-approval here only chooses which tools a step may call when the skill demands tool calls
first (`ducklm-min-tool-calls`). Failures become an event with an `error`; none ends the task.
"""

from __future__ import annotations

import logging

from services.runtime.events import SkillUsed
from services.runtime.peers import PeerError, Peers
from services.runtime.skill_catalogue import TokenCounter
from services.runtime.skill_pages import SKILL_FILE, cut_part

__all__ = ["MIN_TOOL_CALLS_KEY", "read_file_event", "skill_event"]

log = logging.getLogger(__name__)

# Skill metadata key (the Agent Skills `metadata` map): tool calls the skill needs before an answer.
MIN_TOOL_CALLS_KEY = "ducklm-min-tool-calls"


async def skill_event(peers: Peers, name: str, budget_tokens: int, count: TokenCounter | None) -> SkillUsed:
    """The `skill_used` event for loading `name`: the first part of its body and its file list."""
    try:
        skill = await peers.get_skill(name)
    except PeerError as exc:
        return SkillUsed(skill=name, error=exc.message)
    body, part, parts = await cut_part(skill.body, 1, budget_tokens, count)
    min_tool_calls = None
    if MIN_TOOL_CALLS_KEY in skill.metadata:
        try:
            min_tool_calls = max(0, int(skill.metadata[MIN_TOOL_CALLS_KEY]))
        except ValueError:
            log.warning("skill %s: %s is not a number", name, MIN_TOOL_CALLS_KEY)
    return SkillUsed(
        skill=name, body=body, part=part, parts=parts, allowed_tools=tuple(skill.allowed_tools),
        pre_approved_tools=tuple(skill.pre_approved_tools), files=tuple(skill.files), min_tool_calls=min_tool_calls,
    )


async def read_file_event(
    peers: Peers, name: str, path: str, part: int, budget_tokens: int, count: TokenCounter | None
) -> SkillUsed:
    """The `skill_used` event for reading part `part` of `path` in skill `name` (SKILL.md: its body)."""
    try:
        if path.strip("./") == SKILL_FILE:
            text = (await peers.get_skill(name)).body
        else:
            content = await peers.read_skill_file(name, path)
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError:
                return SkillUsed(skill=name, file=path, part=part,
                                 error=f"{path} is a binary file ({len(content)} bytes); it cannot be shown as text")
    except PeerError as exc:
        return SkillUsed(skill=name, file=path, part=part, error=exc.message)
    body, number, parts = await cut_part(text, part, budget_tokens, count)
    return SkillUsed(skill=name, file=path, part=number, parts=parts, body=body)
