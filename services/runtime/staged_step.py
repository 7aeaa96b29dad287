"""One step of the staged decision (staged.py) as the loop asks for it: what the step may offer
(the skill in use, the follow-up after a result, the workspace's paths), over the task's
transcript (transcript.py). The loop records the calls; nothing here writes the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from services.runtime import events as ev
from services.runtime.completion_client import CompletionModel
from services.runtime.config import Settings
from services.runtime.directives import Directive, DirectiveError
from services.runtime.fill_schema import required_path_kind
from services.runtime.grounding import exact_answer
from services.runtime.intents import asks_about_content, asks_for_change, file_names_in, stated_commands
from services.runtime.model_client import ModelCall
from services.runtime.models_config import ModelsConfig
from services.runtime.peers import PeerError, Peers, SkillSummary, ToolSpec, WorkspaceEntry
from services.runtime.staged import PATH_KIND_KEY, Stage, StagedDecider, StepMenu
from services.runtime.transcript import render_events
from services.runtime.turn import TurnState
from services.runtime.write_content import write_choices

__all__ = ["decide_staged", "make_decider", "reply_cap"]

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
    request = turn.message.text if turn.message is not None else ""
    if follow_up == "answer" and not tools_only and _read_before_change(turn, request, tools):
        # Read so as to change it: the change is the next step (or an answer saying why not).
        offered = [tool for tool in offered if not tool.read_only]
    elif follow_up == "answer" and not tools_only:
        forced = True
    elif follow_up == "look":
        offered = [tool for tool in offered if tool.read_only]
        if _found_something(turn.last_result):
            # A search found what was asked for: what is left is to answer, or to read what it
            # found where the request asks about what the files hold.
            reads = asks_about_content(turn.message.text if turn.message is not None else "")
            offered = [tool for tool in offered if reads and required_path_kind(tool) == "file"]
            forced = forced or not offered
    last = turn.last_result
    workspace = await _workspace(peers, turn, offered, tools)
    steps_menu = StepMenu(
        tools=offered, skills=menu.skills if follow_up == "free" else (), memory=menu.memory and follow_up == "free",
        answer_only=forced, tools_only=tools_only, workspace=workspace,
        request=request, paths_listed=follow_up == "look", first_step=last is None,
        exact_answer=(exact_answer(request, dict(last.result)) or "") if last is not None and last.ok else "",
        write_choices=tuple(write_choices(request, _file_to_extend(last, request))),
        command_choices=tuple(tuple(argv) for argv in stated_commands(request, [e.path for e in workspace or ()])),
    )
    prompt = decider.header(menu) + "\n" + render_events(turn.events)
    outputs: list[str] = []

    async def record_output(call: ModelCall, stage: Stage) -> None:
        outputs.append(call.text)
        await record(call, stage)

    try:
        return await decider.decide(prompt, steps_menu, record_output, on_answer_token=stream_answer,
                                    session=turn.task_id, fresh=turn.tokens_spent == 0)
    except DirectiveError as exc:
        raise DirectiveError(str(exc), output=" | ".join(outputs)) from None


async def _workspace(
    peers: Peers | None, turn: TurnState, offered: Sequence[ToolSpec], tools: Sequence[ToolSpec],
) -> list[WorkspaceEntry] | None:
    """The workspace's entries, for path arguments (None if no offered tool reads a path or
    the listing fails: paths are then a capped pattern instead of a choice). Listed once per
    run of the turn, and again after each result of a tool that may change files."""
    if peers is None or not any(_reads_paths(tool) for tool in offered):
        return None
    read_only = {tool.name for tool in tools if tool.read_only}
    changes = sum(1 for name in turn.results if name not in read_only)
    if turn.workspace is not None and turn.workspace[0] == changes:
        return list(turn.workspace[1])
    try:
        entries = await peers.list_workspace(turn.task_id)
    except PeerError as exc:
        log.info("no workspace listing for path choices: %s", exc.message, extra={"task_id": turn.task_id})
        return None
    turn.workspace = (changes, tuple(entries))
    return entries


def _found_something(last: ev.ToolResult | None) -> bool:
    matches = last.result.get("matches") if last is not None and last.ok else None
    return isinstance(matches, list) and bool(matches)


def _read_before_change(turn: TurnState, request: str, tools: Sequence[ToolSpec]) -> bool:
    """The turn asked for a change, has read something, and has changed nothing yet."""
    reading = {tool.name for tool in tools if tool.read_only}
    called = turn.tools_called
    return asks_for_change(request) and bool(called) and all(name in reading for name in called)


def _file_to_extend(last: ev.ToolResult | None, request: str) -> str | None:
    """The content of the file this turn just read, where the request names that file and no
    other (so a write can only be to it): "add the line 'x' to todo.md"."""
    if last is None or not last.ok or not isinstance(last.result.get("content"), str):
        return None
    path = str(last.result.get("path", ""))
    named = file_names_in(request)
    return str(last.result["content"]) if named and all(path.endswith(name) for name in named) else None


def _reads_paths(tool: ToolSpec) -> bool:
    properties = tool.arguments_schema.get("properties") or {}
    return any(isinstance(spec, dict) and spec.get(PATH_KIND_KEY) for spec in properties.values())


def make_decider(settings: Settings, model: CompletionModel, *, calibrate: bool = True) -> StagedDecider | None:
    """The staged decider the settings ask for (None: one JSON directive per step)."""
    if settings.decision != "staged":
        return None
    return StagedDecider(model=model, system_prompt=settings.system_prompt,
                         max_text_chars=reply_cap(settings, model.config), calibrate=calibrate)


def reply_cap(settings: Settings, config: ModelsConfig) -> int:
    """The longest reply: the setting if given, else the chat model's own (models.yaml)."""
    role = config.role("chat")
    assert role is not None, "load_models_config refuses a models file without a chat role"
    return settings.max_reply_chars or role.reply_chars()
