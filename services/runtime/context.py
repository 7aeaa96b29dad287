"""Builds the model's prompt for a step from the task's event log.

The prompt is a pure function of the stored events, rendered in log order, so each step only
appends to the previous prompt: the prefix stays byte-identical and llama-server's prompt cache
serves it. Nothing here calls a model or a service.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from services.runtime.store import EventRecord

__all__ = ["ACTION_GUIDE", "build_messages"]

ACTION_GUIDE = {
    "respond": 'To reply to the user: {"action": "respond", "message": "..."}',
    "finish": 'To give the final answer when the task is done: {"action": "finish", "message": "..."}',
}


def build_messages(system_prompt: str, actions: Sequence[str], events: Sequence[EventRecord]) -> list[dict[str, str]]:
    """The chat messages for the next model call: the system prompt with the action guide, then
    every user message, model directive and error of the task, in order."""
    guide = "\n".join(ACTION_GUIDE[action] for action in actions if action in ACTION_GUIDE)
    messages: list[dict[str, str]] = [{"role": "system", "content": f"{system_prompt}\n{guide}"}]
    for event in events:
        if event.type == "user_message":
            messages.append({"role": "user", "content": str(event.data["text"])})
        elif event.type == "directive":
            messages.append({"role": "assistant", "content": str(event.data["raw"])})
        elif event.type == "error" and event.data.get("code") == "invalid_directive":
            # The invalid output and why it was refused, so the model can repair it.
            messages.append({"role": "assistant", "content": str(event.data.get("output", ""))})
            messages.append(
                {"role": "user", "content": f"That was not a valid action: {event.data['message']}. Reply with one JSON action."}
            )
    return messages


def render(events: Sequence[EventRecord]) -> str:
    """A compact text form of events, for logs and debugging."""
    return "\n".join(f"{event.seq} {event.type} {json.dumps(event.data)[:200]}" for event in events)
