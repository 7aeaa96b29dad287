"""The agent loop: one user turn of a task, step by step, until the task comes to rest.

Each step builds the context from the stored events, asks the `chat` role for a directive
constrained by the step's schema, validates it, stores it, and carries it out. Every event is
committed before the next step starts.
"""

from __future__ import annotations

import logging

from services.runtime.config import Settings
from services.runtime.context import build_messages
from services.runtime.directives import DirectiveError, DirectiveSchema
from services.runtime.model_client import ModelClient
from services.runtime.states import TaskStatus
from services.runtime.store import TaskStore

__all__ = ["RuntimeLoop"]

log = logging.getLogger(__name__)

# The actions this loop can carry out. The step schema offers only these.
TURN_ENDING_ACTIONS = ("respond", "finish")


class RuntimeLoop:
    def __init__(self, settings: Settings, store: TaskStore, models: ModelClient, schema: DirectiveSchema) -> None:
        self._settings = settings
        self._store = store
        self._models = models
        self._schema = schema

    def available_actions(self) -> list[str]:
        return list(TURN_ENDING_ACTIONS)

    async def run_turn(self, task_id: str) -> None:
        """Runs the task (status RUNNING) until it completes, fails or waits."""
        actions = self.available_actions()
        step_schema = self._schema.for_step(actions, max_text_chars=self._settings.max_reply_chars)
        repairs = 0
        for _ in range(self._settings.max_steps):
            task = await self._store.get_task(task_id)
            spent = task.prompt_tokens + task.completion_tokens
            if spent >= self._settings.token_budget:
                await self._fail(task_id, "token_budget", f"token budget of {self._settings.token_budget} spent ({spent})")
                return
            events = await self._store.list_events(task_id, limit=100_000)
            messages = build_messages(self._settings.system_prompt, actions, events)

            async def stream_token(text: str) -> None:
                self._store.publish_live(task_id, "model_token", {"text": text})

            call = await self._models.chat("chat", messages, json_schema=step_schema, on_token=stream_token)
            await self._store.append_event(task_id, "model_call", call.as_event_data())
            await self._store.record_step(
                task_id,
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
                cached_prompt_tokens=call.cached_prompt_tokens,
            )
            try:
                directive = self._schema.parse(call.text, step_schema)
            except DirectiveError as exc:
                repairs += 1
                await self._store.append_event(
                    task_id, "error", {"code": "invalid_directive", "message": str(exc), "output": call.text}
                )
                if repairs > self._settings.max_repairs:
                    await self._fail(task_id, "invalid_directive", f"the model gave {repairs} invalid directives in a row: {exc}")
                    return
                continue
            repairs = 0
            await self._store.append_event(
                task_id, "directive", {"action": directive.action, **directive.fields, "raw": directive.raw}
            )
            if directive.action in TURN_ENDING_ACTIONS:
                await self._store.append_event(
                    task_id, "assistant_message", {"text": directive.message, "final": directive.action == "finish"}
                )
                await self._store.set_last_reply(task_id, directive.message)
                await self._store.set_status(task_id, TaskStatus.COMPLETED, reason=directive.action)
                return
        await self._fail(task_id, "step_limit", f"no answer within {self._settings.max_steps} steps")

    async def _fail(self, task_id: str, code: str, message: str) -> None:
        log.warning("task failed: %s", message, extra={"task_id": task_id})
        await self._store.append_event(task_id, "error", {"code": code, "message": message})
        await self._store.set_status(task_id, TaskStatus.FAILED, reason=code, error=message)
