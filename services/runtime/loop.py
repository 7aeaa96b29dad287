"""The agent loop: one user turn of a task, step by step, until the task comes to rest.

Each step builds the context from the stored events, asks the `chat` role for a directive
constrained by the step's schema (only the actions, tools and skills available then),
validates it, stores it, and carries it out. Every event is committed before the next step
starts, so a restart resumes from the log without repeating a tool call that completed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from services.runtime.client_functions import client_tools, merge_tools, reply_schema
from services.runtime.compaction import summarise
from services.runtime.config import Settings
from services.runtime.context import Catalogue, active_skill, build_messages, estimate_tokens, turn_start
from services.runtime.directives import Directive, DirectiveError, DirectiveSchema
from services.runtime.metrics import observe_tool_call
from services.runtime.model_client import ChatModel, ModelCall
from services.runtime.models_config import RoleConfig
from services.runtime.peers import PeerError, Peers, SkillSummary, ToolSpec
from services.runtime.reply_stream import ReplyExtractor
from services.runtime.states import TaskStatus
from services.runtime.store import EventRecord, TaskStore

__all__ = ["RuntimeLoop"]

log = logging.getLogger(__name__)

Outcome = Literal["continue", "rest"]
TURN_ENDING_ACTIONS = ("respond", "finish")
# Skill metadata key (the Agent Skills `metadata` map): tool calls the skill needs before an answer.
MIN_TOOL_CALLS_KEY = "ducklm-min-tool-calls"


class RuntimeLoop:
    def __init__(
        self, settings: Settings, store: TaskStore, models: ChatModel, schema: DirectiveSchema, peers: Peers | None
    ) -> None:
        self._settings = settings
        self._store = store
        self._models = models
        self._schema = schema
        self._peers = peers

    @property
    def peers(self) -> Peers | None:
        return self._peers

    # -- the turn ----------------------------------------------------------------------------

    async def run_turn(self, task_id: str) -> None:
        """Runs the task (status RUNNING) until it completes, fails or waits for a human."""
        events = await self._events(task_id)
        # The catalogue is read once per turn: the same for every step, so the prompt's prefix
        # stays cacheable; skills added on disk show up from the next turn.
        tools = merge_tools(await self._tools(), client_tools(events))
        skills = await self._peers.list_skills() if self._peers is not None else []
        if await self._settle_pending_call(task_id, events, tools) == "rest":
            return
        events = await self._events(task_id)
        if self._is_turn_start(events):
            await self._recall_for_turn(task_id, events)
            requested = next(e.data.get("skill") for e in reversed(events) if e.type == "user_message")
            if requested:
                await self._use_skill(task_id, str(requested))
        repairs = 0
        while True:
            events = await self._events(task_id)
            start = turn_start(events)
            steps = sum(1 for e in events if e.type == "model_call" and e.seq > start and not e.data.get("purpose"))
            if steps >= self._settings.max_steps:
                await self._fail(task_id, "step_limit", f"no answer within {self._settings.max_steps} steps")
                return
            task = await self._store.get_task(task_id)
            spent = task.prompt_tokens + task.completion_tokens
            if spent >= self._settings.token_budget:
                await self._fail(task_id, "token_budget", f"token budget of {self._settings.token_budget} spent ({spent})")
                return
            last_step = steps == self._settings.max_steps - 1
            catalogue, step_schema = self._step_options(events, tools, skills, last_step)
            messages = build_messages(self._settings.system_prompt, catalogue, events)
            fit = await self._fit_context(task_id, events, messages)
            if fit == "full":
                return
            if fit == "compacted":
                continue
            call = await self._call_model(task_id, messages, step_schema)
            try:
                directive = self._schema.parse(call.text, step_schema)
            except DirectiveError as exc:
                repairs += 1
                reason = str(exc)
                if call.finish_reason == "length":
                    reason += f" (the output was cut off at max_tokens={self._chat_role().max_tokens})"
                await self._store.append_event(
                    task_id, "error", {"code": "invalid_directive", "message": reason, "output": call.text}
                )
                if repairs > self._settings.max_repairs:
                    await self._fail(task_id, "invalid_directive", f"the model gave {repairs} invalid directives in a row: {reason}")
                    return
                continue
            repairs = 0
            await self._store.append_event(task_id, "directive", {"action": directive.action, **directive.fields, "raw": directive.raw})
            if await self._act(task_id, directive, events, tools) == "rest":
                return

    async def _call_model(self, task_id: str, messages: list[dict[str, str]], step_schema: dict[str, Any]) -> ModelCall:
        reply = ReplyExtractor()

        async def stream_token(text: str) -> None:
            self._store.publish_live(task_id, "model_token", {"text": text, "reply": reply.feed(text)})

        call = await self._models.chat("chat", messages, json_schema=step_schema, on_token=stream_token)
        await self._record_call(task_id, call)
        return call

    async def _record_call(self, task_id: str, call: ModelCall, purpose: str = "") -> None:
        data = call.as_event_data()
        if purpose:
            data["purpose"] = purpose
        await self._store.record_model_call(
            task_id,
            data,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            cached_prompt_tokens=call.cached_prompt_tokens,
        )

    # -- what the model may do this step -----------------------------------------------------

    async def _tools(self) -> list[ToolSpec]:
        return await self._peers.list_tools() if self._peers is not None else []

    def _step_options(
        self, events: Sequence[EventRecord], tools: list[ToolSpec], skills: list[SkillSummary], last_step: bool
    ) -> tuple[Catalogue, dict[str, Any]]:
        """The catalogue shown in the system prompt (the same every step, so the prompt's prefix
        stays cacheable) and this step's schema, narrowed to what the model may do now."""
        actions = list(TURN_ENDING_ACTIONS)
        if self._peers is not None:
            actions += ["call_tool", "use_skill", "remember", "recall"]
        catalogue = Catalogue(
            tools=tuple((tool.name, tool.description) for tool in tools),
            skills=tuple((s.name, s.description) for s in skills),
            actions=tuple(actions),
        )
        skill = active_skill(events)
        offered_tools = tools
        if skill is not None and skill.get("allowed_tools"):
            allowed = set(skill["allowed_tools"])
            offered_tools = [tool for tool in tools if tool.name in allowed]
        if last_step:
            # The last step may only answer, so every turn ends with a reply.
            step_actions = list(TURN_ENDING_ACTIONS)
        elif skill is not None and offered_tools and self._skill_needs_tool_calls(skill, events):
            # The skill asks to look before answering: this step may only call its tools.
            step_actions = ["call_tool"]
        else:
            step_actions = [action for action in actions if action != "call_tool" or offered_tools]
        schema = self._schema.for_step(
            step_actions,
            max_text_chars=self._settings.max_reply_chars or self._chat_role().reply_chars(),
            tools=[(tool.name, tool.arguments_schema) for tool in offered_tools],
            skills=[s.name for s in skills],
            reply_schema=reply_schema(events),
        )
        return catalogue, schema

    @staticmethod
    def _skill_needs_tool_calls(skill: dict[str, Any], events: Sequence[EventRecord]) -> bool:
        calls = sum(1 for e in events if e.type == "tool_call" and e.seq > int(skill["seq"]))
        return calls < int(skill.get("min_tool_calls", 0))

    # -- carrying out a directive ------------------------------------------------------------

    async def _act(self, task_id: str, directive: Directive, events: Sequence[EventRecord], tools: list[ToolSpec]) -> Outcome:
        action = directive.action
        if action in TURN_ENDING_ACTIONS:
            if action == "finish" and self._settings.remember_answers and self._peers is not None:
                await self._remember(task_id, directive.message, kind="answer")
            await self._store.complete_turn(task_id, directive.message, final=action == "finish", reason=action)
            return "rest"
        assert self._peers is not None, "only respond/finish are offered without peers"
        if action == "call_tool":
            skill = active_skill(events)
            tool = str(directive.fields["tool"])
            allowed = skill.get("allowed_tools") if skill else None
            call_id = uuid.uuid4().hex[:12]
            arguments = dict(directive.fields.get("arguments") or {})
            if tool in {spec.name for spec in client_tools(events)}:
                # The client runs its own functions: the turn ends here, its result comes as the next message.
                data = {"call_id": call_id, "tool": tool, "arguments": arguments, "client": True}
                await self._store.append_event(task_id, "tool_call", data)
                await self._store.complete_turn(task_id, "", final=False, reason="client_function_call")
                return "rest"
            await self._store.append_event(task_id, "tool_call", {"call_id": call_id, "tool": tool, "arguments": arguments})
            if skill is not None and allowed and tool not in allowed:
                await self._tool_result(task_id, call_id, tool, ok=False, error=f"skill {skill['skill']} may not use {tool}")
                return "continue"
            return await self._execute(task_id, call_id, tool, arguments)
        if action == "use_skill":
            await self._use_skill(task_id, str(directive.fields["skill"]))
            return "continue"
        if action == "remember":
            await self._remember(task_id, str(directive.fields["text"]), kind="fact")
            return "continue"
        if action == "recall":
            await self._recall(task_id, str(directive.fields["query"]), automatic=False)
            return "continue"
        raise DirectiveError(f"unknown action {action}")

    async def _use_skill(self, task_id: str, name: str) -> None:
        """Loads a skill's body into the task (progressive disclosure: only now, only on use)."""
        assert self._peers is not None
        try:
            skill = await self._peers.get_skill(name)
        except PeerError as exc:
            await self._store.append_event(task_id, "skill_used", {"skill": name, "error": exc.message})
            return
        data: dict[str, Any] = {"skill": name, "body": skill.body, "allowed_tools": list(skill.allowed_tools)}
        if MIN_TOOL_CALLS_KEY in skill.metadata:
            try:
                data["min_tool_calls"] = max(0, int(skill.metadata[MIN_TOOL_CALLS_KEY]))
            except ValueError:
                log.warning("skill %s: %s is not a number", name, MIN_TOOL_CALLS_KEY)
        await self._store.append_event(task_id, "skill_used", data)

    async def _execute(self, task_id: str, call_id: str, tool: str, arguments: dict[str, Any], approval_id: str = "") -> Outcome:
        assert self._peers is not None
        started = time.perf_counter()
        outcome = await self._peers.execute_tool(task_id, tool, arguments, approval_id)
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if not outcome.ok and outcome.reason == "APPROVAL_REQUIRED" and not approval_id:
            approval = await self._peers.request_approval(task_id, tool, arguments)
            await self._store.append_event(
                task_id,
                "approval_requested",
                {"approval_id": approval.id, "call_id": call_id, "tool": tool, "arguments": arguments, "action_hash": approval.action_hash},
            )
            await self._store.set_status(task_id, TaskStatus.WAITING_APPROVAL, reason="approval_requested", pending_approval_id=approval.id)
            return "rest"
        await self._tool_result(
            task_id, call_id, tool, ok=outcome.ok, result=outcome.result, error=outcome.error, code=outcome.code,
            duration_ms=duration_ms,
        )
        return "continue"

    async def _tool_result(self, task_id: str, call_id: str, tool: str, *, ok: bool, result: dict[str, Any] | None = None,
                           error: str = "", code: str = "", **extra: Any) -> None:
        data: dict[str, Any] = {"call_id": call_id, "tool": tool, "ok": ok, "result": result or {}, "error": error, **extra}
        if code:
            data["code"] = code
        await self._store.append_event(task_id, "tool_result", data)
        observe_tool_call(tool, "ok" if ok else ("denied" if extra.get("denied") else "error"))

    async def _settle_pending_call(self, task_id: str, events: Sequence[EventRecord], tools: list[ToolSpec]) -> Outcome:
        """Finishes a tool call the log left open: after an approval decision, or after a crash
        while it ran. A call that may have run is never silently repeated unless read-only."""
        calls = [e for e in events if e.type == "tool_call"]
        if not calls:
            return "continue"
        call = calls[-1].data
        if call.get("client"):
            return "continue"  # the client ran it; its result is in the user's message
        call_id = str(call["call_id"])
        if any(e.type == "tool_result" and e.data.get("call_id") == call_id for e in events):
            return "continue"
        requested = [e.data for e in events if e.type == "approval_requested" and e.data.get("call_id") == call_id]
        if requested:
            approval_id = str(requested[-1]["approval_id"])
            decided = [e.data for e in events if e.type == "approval_decided" and e.data.get("approval_id") == approval_id]
            if not decided:
                return "rest"
            decision = decided[-1]
            if decision["decision"] == "approved":
                assert self._peers is not None
                if (await self._peers.get_approval(approval_id)).state == "used":
                    # Consumed by an execution that the runtime did not see finish: never re-run.
                    await self._interrupted(task_id, call_id, str(call["tool"]))
                    return "continue"
                return await self._execute(task_id, call_id, str(call["tool"]), dict(call["arguments"]), approval_id)
            reason = f": {decision['reason']}" if decision.get("reason") else ""
            await self._tool_result(
                task_id, call_id, str(call["tool"]), ok=False, denied=True,
                error=f"the user {decision['decision']} this action{reason}",
            )
            return "continue"
        read_only = {tool.name for tool in tools if tool.read_only and not tool.requires_approval}
        if call["tool"] in read_only:
            log.info("re-running read-only tool call %s after a restart", call_id, extra={"task_id": task_id})
            return await self._execute(task_id, call_id, str(call["tool"]), dict(call["arguments"]))
        await self._interrupted(task_id, call_id, str(call["tool"]))
        return "continue"

    async def _interrupted(self, task_id: str, call_id: str, tool: str) -> None:
        await self._tool_result(
            task_id, call_id, tool, ok=False, interrupted=True,
            error="the runtime stopped while this tool call ran; it was not repeated, and it may or may not have "
            "taken effect. Check before calling it again.",
        )

    # -- memory ------------------------------------------------------------------------------

    def _is_turn_start(self, events: Sequence[EventRecord]) -> bool:
        start = turn_start(events)
        return bool(start) and not any(e.seq > start and e.type in ("memory_recalled", "model_call") for e in events)

    async def _recall_for_turn(self, task_id: str, events: Sequence[EventRecord]) -> None:
        if self._peers is None or self._settings.recall_top_k == 0:
            return
        query = next(str(e.data["text"]) for e in reversed(events) if e.type == "user_message")
        await self._recall(task_id, query, automatic=True)

    async def _recall(self, task_id: str, query: str, *, automatic: bool) -> None:
        assert self._peers is not None
        data: dict[str, Any] = {"query": query, "automatic": automatic}
        started = time.perf_counter()
        try:
            memories = await self._peers.recall(query, self._settings.recall_top_k or 3)
        except PeerError as exc:
            data.update(memory_ids=[], error=exc.message, code=exc.reason or exc.code)
        else:
            data.update(
                memory_ids=[m.id for m in memories],
                memories=[{"id": m.id, "text": m.text, "score": round(m.score, 4)} for m in memories],
            )
        data["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        await self._store.append_event(task_id, "memory_recalled", data)

    async def _remember(self, task_id: str, text: str, *, kind: str) -> None:
        assert self._peers is not None
        started = time.perf_counter()
        data: dict[str, Any] = {"text": text, "kind": kind}
        try:
            data["memory_id"] = await self._peers.remember(task_id, text, kind)
        except PeerError as exc:
            data.update(error=exc.message, code=exc.reason or exc.code)
        data["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        await self._store.append_event(task_id, "memory_stored", data)

    # -- compaction and failure --------------------------------------------------------------

    async def _fit_context(
        self, task_id: str, events: Sequence[EventRecord], messages: list[dict[str, str]]
    ) -> Literal["fits", "compacted", "full"]:
        """Compacts older events when the prompt nears the window; "full" (the task has failed)
        when even that cannot make room."""
        role = self._chat_role()
        limit = int(role.context_window * self._settings.compact_ratio) - role.max_tokens
        if estimate_tokens(messages) <= limit:
            return "fits"
        previous = max((int(e.data["up_to_seq"]) for e in events if e.type == "context_compacted"), default=0)
        keep = self._settings.compact_keep_events
        covered = [e for e in events if e.seq > previous][:-keep] if len(events) > keep else []
        if not covered:
            await self._fail(task_id, "context_full", "the context window is full even after compaction")
            return "full"
        summary, method, call = await summarise(self._models, "chat", covered)
        await self._record_call(task_id, call, purpose="compaction")
        await self._store.append_event(
            task_id, "context_compacted", {"summary": summary, "up_to_seq": covered[-1].seq, "method": method}
        )
        return "compacted"

    def _chat_role(self) -> RoleConfig:
        role = self._models.config.role("chat")
        assert role is not None, "load_models_config refuses a models file without a chat role"
        return role

    async def _events(self, task_id: str) -> list[EventRecord]:
        return await self._store.list_events(task_id, limit=1_000_000)

    async def _fail(self, task_id: str, code: str, message: str) -> None:
        log.warning("task failed: %s", message, extra={"task_id": task_id})
        await self._store.fail_task(task_id, code, message)
