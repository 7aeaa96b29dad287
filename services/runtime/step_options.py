"""What the model may do in one step of the one-JSON-directive decision: the catalogue shown in
the system prompt and the step's schema, narrowed to the actions, tools and skills available
then. A pure function of the turn's state; nothing here calls a model or a service.
"""

from __future__ import annotations

from typing import Any

from services.common.vocabulary import TURN_ENDING_ACTIONS
from services.runtime.client_functions import reply_schema
from services.runtime.context import Catalogue
from services.runtime.directives import DirectiveSchema
from services.runtime.peers import ToolSpec
from services.runtime.skill_catalogue import OfferedSkills
from services.runtime.turn import TurnState

__all__ = ["step_options"]


def step_options(
    schema: DirectiveSchema, turn: TurnState, tools: list[ToolSpec], offered: OfferedSkills, *, with_peers: bool,
    last_step: bool, max_text_chars: int,
) -> tuple[Catalogue, dict[str, Any]]:
    """The catalogue shown in the system prompt (the same every step, so the prompt's prefix
    stays cacheable) and this step's schema, narrowed to what the model may do now."""
    skills = offered.skills
    actions = list(TURN_ENDING_ACTIONS)
    if with_peers:
        # use_skill only when a skill is offered: a small model is not shown an action it cannot take.
        actions += ["call_tool", *(["use_skill"] if skills else []), "remember", "recall"]
    catalogue = Catalogue(
        tools=tuple((tool.name, tool.description) for tool in tools),
        skills=tuple((s.name, s.description) for s in skills),
        actions=tuple(actions),
        skills_left_out=offered.left_out,
    )
    skill = turn.skill
    offered_tools = tools
    if skill is not None and with_peers:
        # A skill in use may open its files (read_skill_file); allowed-tools never narrows the tools.
        actions.append("read_skill_file")
    if last_step:
        # The last step may only answer, so every turn ends with a reply.
        step_actions = list(TURN_ENDING_ACTIONS)
    elif skill is not None and offered_tools and turn.skill_needs_tool_calls():
        # The skill asks to look before answering: this step may only call tools, its
        # pre-approved ones where they exist here.
        step_actions = ["call_tool"]
        pre_approved = set(skill.used.pre_approved_tools or ())
        offered_tools = [tool for tool in tools if tool.name in pre_approved] or tools
    else:
        step_actions = [action for action in actions if action != "call_tool" or offered_tools]
    step_schema = schema.for_step(
        step_actions,
        max_text_chars=max_text_chars,
        tools=[(tool.name, tool.arguments_schema) for tool in offered_tools],
        skills=[s.name for s in skills],
        reply_schema=reply_schema(turn.message),
    )
    return catalogue, step_schema
