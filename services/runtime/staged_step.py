"""One step of the staged decision (staged.py) as the loop asks for it: what the step may offer
(the skill in use, the follow-up after a result, the workspace's paths), over the task's
transcript (transcript.py). The loop records the calls; nothing here writes the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from services.runtime.directives import Directive, DirectiveError
from services.runtime.model_client import ModelCall
from services.runtime.peers import PeerError, Peers, SkillSummary, ToolSpec, WorkspaceEntry
from services.runtime.staged import PATH_KIND_KEY, Stage, StagedDecider, StepMenu
from services.runtime.transcript import render_events
from services.runtime.turn import TurnState

__all__ = ["decide_staged"]

log = logging.getLogger(__name__)

Record = Callable[[ModelCall, Stage], Awaitable[None]]
StreamAnswer = Callable[[str], Awaitable[None]]


async def decide_staged(
    decider: StagedDecider, turn: TurnState, tools: list[ToolSpec], skills: list[SkillSummary], *,
    forced: bool, peers: Peers | None, record: Record, stream_answer: StreamAnswer,
) -> Directive:
    """Choose the step, then fill it (see staged.py), over the task's transcript."""
    skill = turn.skill
    offered = tools
    needs_look = turn.skill_needs_tool_calls()
    if skill is not None and needs_look:
        # The skill asks to look before answering: its pre-approved tools where they exist here.
        pre_approved = set(skill.used.pre_approved_tools or ())
        offered = [tool for tool in tools if tool.name in pre_approved] or tools
    tools_only = needs_look and bool(offered)
    menu = StepMenu(tools=tools, skills=tuple((s.name, s.description) for s in skills), memory=peers is not None)
    follow_up = turn.follow_up()
    if follow_up == "answer" and not tools_only:
        forced = True
    elif follow_up == "look":
        offered = [tool for tool in offered if tool.read_only]
    steps_menu = StepMenu(
        tools=offered, skills=menu.skills if follow_up == "free" else (), memory=menu.memory and follow_up == "free",
        answer_only=forced, tools_only=tools_only, workspace=await _workspace(peers, turn.task_id, offered),
        request=turn.message.text if turn.message is not None else "",
    )
    prompt = decider.header(menu) + "\n" + render_events(turn.events)
    outputs: list[str] = []

    async def record_output(call: ModelCall, stage: Stage) -> None:
        outputs.append(call.text)
        await record(call, stage)

    try:
        return await decider.decide(prompt, steps_menu, record_output, on_answer_token=stream_answer)
    except DirectiveError as exc:
        raise DirectiveError(str(exc), output=" | ".join(outputs)) from None


async def _workspace(peers: Peers | None, task_id: str, tools: Sequence[ToolSpec]) -> list[WorkspaceEntry] | None:
    """The workspace's entries, for path arguments (None if no offered tool reads a path or
    the listing fails: paths are then a capped pattern instead of a choice)."""
    if peers is None or not any(_reads_paths(tool) for tool in tools):
        return None
    try:
        return await peers.list_workspace(task_id)
    except PeerError as exc:
        log.info("no workspace listing for path choices: %s", exc.message, extra={"task_id": task_id})
        return None


def _reads_paths(tool: ToolSpec) -> bool:
    properties = tool.arguments_schema.get("properties") or {}
    return any(isinstance(spec, dict) and spec.get(PATH_KIND_KEY) for spec in properties.values())
