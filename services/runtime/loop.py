"""The agent loop: one user turn of a task, step by step, until the task comes to rest.

Each step builds the context from the stored events, asks the `chat` role for a directive
constrained by the step's schema (only the actions, tools and skills available then),
validates it, stores it, and carries it out. Every event is committed before the next step
starts, so a restart resumes from the log without repeating a tool call that completed.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from services.common.tracing import model_call_span, span
from services.runtime.client_functions import client_tools, merge_tools, reply_schema
from services.runtime.compaction import summarise
from services.runtime.completion_client import CompletionModel, NativeApiMissing
from services.runtime.config import Settings
from services.runtime.context import Catalogue, active_skill, build_messages, estimate_tokens, turn_start
from services.runtime.directives import Directive, DirectiveError, DirectiveSchema
from services.runtime.early_recall import EarlyRecalls
from services.runtime.metrics import observe_tool_call
from services.runtime.model_client import ChatModel, ModelCall
from services.runtime.models_config import ModelsConfig, RoleConfig
from services.runtime.peers import PeerError, Peers, SkillSummary, ToolSpec, WorkspaceEntry
from services.runtime.reply_stream import ReplyExtractor
from services.runtime.skill_catalogue import OfferedSkills, SkillCatalogue
from services.runtime.skill_use import read_file_event, skill_event
from services.runtime.staged import PATH_KIND_KEY, Stage, StagedDecider, StepMenu
from services.runtime.store import EventRecord, TaskStore
from services.runtime.transcript import render_events

__all__ = ["RuntimeLoop", "make_decider"]

log = logging.getLogger(__name__)

Outcome = Literal["continue", "rest"]
TURN_ENDING_ACTIONS = ("respond", "finish")


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


class RuntimeLoop:
    def __init__(
        self, settings: Settings, store: TaskStore, models: ChatModel, schema: DirectiveSchema, peers: Peers | None,
        decider: StagedDecider | None = None,
        skill_catalogue: SkillCatalogue | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._models = models
        self._schema = schema
        self._peers = peers
        # The staged decision for small models; None: one JSON directive per step.
        self._decider = decider
        # None (a replay): every skill is offered, as recorded.
        self._skill_catalogue = skill_catalogue
        self._early_recalls = EarlyRecalls(settings.recall_wait_ms / 1000)

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
            self._recall_for_turn(task_id, events)
            requested = next(e.data.get("skill") for e in reversed(events) if e.type == "user_message")
            if requested:
                await self._use_skill(task_id, str(requested))
        offered = await self._offer_skills(skills, events)  # hook: skill_catalogue.py
        repairs = 0
        while True:
            await self._record_recall(task_id)
            events = await self._events(task_id)
            start = turn_start(events)
            steps = _steps_in_turn(events, start)
            if steps >= self._settings.max_steps:
                await self._fail(task_id, "step_limit", f"no answer within {self._settings.max_steps} steps")
                return
            task = await self._store.get_task(task_id)
            spent = task.prompt_tokens + task.completion_tokens
            if spent >= self._settings.token_budget:
                await self._fail(task_id, "token_budget", f"token budget of {self._settings.token_budget} spent ({spent})")
                return
            last_step = steps == self._settings.max_steps - 1
            catalogue, step_schema = self._step_options(events, tools, offered, last_step)
            messages = build_messages(self._settings.system_prompt, catalogue, events)
            fit = await self._fit_context(task_id, events, messages)
            if fit == "full":
                return
            if fit == "compacted":
                continue
            forced = "step_limit" if last_step else ("repeated_call" if _repeated_last_call(events, start) else "")
            try:
                directive = None
                decider = self._decider
                if decider is not None:
                    try:
                        directive = await self._decide_staged(decider, task_id, events, tools, list(offered.skills),
                                                                   forced=bool(forced))
                    except NativeApiMissing as exc:
                        log.warning("%s; asking for one JSON directive per step from now on", exc.message)
                        self._decider = None
                if directive is None:
                    directive = await self._decide_once(task_id, messages, step_schema)
            except DirectiveError as exc:
                repairs += 1
                await self._store.append_event(
                    task_id, "error", {"code": "invalid_directive", "message": str(exc), "output": exc.output}
                )
                if repairs > self._settings.max_repairs:
                    await self._fail(task_id, "invalid_directive", f"the model gave {repairs} invalid directives in a row: {exc}")
                    return
                continue
            repairs = 0
            await self._store.append_event(task_id, "directive", {"action": directive.action, **directive.fields, "raw": directive.raw})
            if directive.action == "call_tool" and _same_call_made(events, start, directive):
                # Running it again would give the same result: say so, and let the next step only answer.
                await self._store.append_event(task_id, "error", {
                    "code": "repeated_call",
                    "message": f"{directive.fields.get('tool')} was already called with these arguments in this turn; "
                    "answer with the result above",
                })
                continue
            if await self._act(task_id, directive, events, tools, reason=forced) == "rest":
                return

    async def _decide_once(self, task_id: str, messages: list[dict[str, str]], step_schema: dict[str, Any]) -> Directive:
        """One JSON directive, constrained by the whole step's schema."""
        call = await self._call_model(task_id, messages, step_schema)
        if call.cut_off:
            raise DirectiveError(f"the output was cut off: {call.cut_off}", output=call.text)
        try:
            return self._schema.parse(call.text, step_schema)
        except DirectiveError as exc:
            reason = str(exc)
            if call.finish_reason == "length":
                reason += f" (the output was cut off at max_tokens={self._chat_role().max_tokens})"
            raise DirectiveError(reason, output=call.text) from None

    async def _decide_staged(
        self, decider: StagedDecider, task_id: str, events: Sequence[EventRecord], tools: list[ToolSpec], skills: list[SkillSummary], *,
        forced: bool,
    ) -> Directive:
        """Choose the step, then fill it (see staged.py), over the task's transcript."""
        skill = active_skill(events)
        offered = tools
        needs_look = skill is not None and self._skill_needs_tool_calls(skill, events)
        if skill is not None and needs_look:
            # The skill asks to look before answering: its pre-approved tools where they exist here.
            pre_approved = set(skill.get("pre_approved_tools") or ())
            offered = [tool for tool in tools if tool.name in pre_approved] or tools
        tools_only = needs_look and bool(offered)
        menu = StepMenu(
            tools=tools, skills=tuple((s.name, s.description) for s in skills), memory=self._peers is not None,
        )
        follow_up = _follow_up(events, turn_start(events))
        if follow_up == "answer" and not tools_only:
            forced = True
        elif follow_up == "look":
            offered = [tool for tool in offered if tool.read_only]
        request = next((str(e.data["text"]) for e in reversed(events) if e.type == "user_message"), "")
        steps_menu = StepMenu(
            tools=offered, skills=menu.skills if follow_up == "free" else (), memory=menu.memory and follow_up == "free",
            answer_only=forced, tools_only=tools_only, workspace=await self._workspace(task_id, offered),
            request=request,
        )
        prompt = decider.header(menu) + "\n" + render_events(events)
        outputs: list[str] = []

        async def record(call: ModelCall, stage: Stage) -> None:
            outputs.append(call.text)
            await self._record_call(task_id, call, stage=stage)

        async def stream_answer(text: str) -> None:
            self._store.publish_live(task_id, "model_token", {"text": text, "reply": text})

        try:
            return await decider.decide(prompt, steps_menu, record, on_answer_token=stream_answer)
        except DirectiveError as exc:
            raise DirectiveError(str(exc), output=" | ".join(outputs)) from None

    async def _workspace(self, task_id: str, tools: Sequence[ToolSpec]) -> list[WorkspaceEntry] | None:
        """The workspace's entries, for path arguments (None if no offered tool reads a path or
        the listing fails: paths are then a capped pattern instead of a choice)."""
        if self._peers is None or not any(_reads_paths(tool) for tool in tools):
            return None
        try:
            return await self._peers.list_workspace(task_id)
        except PeerError as exc:
            log.info("no workspace listing for path choices: %s", exc.message, extra={"task_id": task_id})
            return None

    async def _call_model(self, task_id: str, messages: list[dict[str, str]], step_schema: dict[str, Any]) -> ModelCall:
        reply = ReplyExtractor()

        async def stream_token(text: str) -> None:
            self._store.publish_live(task_id, "model_token", {"text": text, "reply": reply.feed(text)})

        call = await self._models.chat("chat", messages, json_schema=step_schema, on_token=stream_token)
        await self._record_call(task_id, call)
        return call

    async def _record_call(self, task_id: str, call: ModelCall, purpose: str = "", stage: str = "") -> None:
        model_call_span("text_completion" if stage else "chat", model=call.model, role=call.role, latency_ms=call.latency_ms,
                        input_tokens=call.prompt_tokens, output_tokens=call.completion_tokens,
                        cached_input_tokens=call.cached_prompt_tokens, finish_reason=call.finish_reason,
                        conversation_id=task_id, purpose=purpose or stage)
        data = call.as_event_data()
        if purpose:
            data["purpose"] = purpose
        if stage:
            data["stage"] = stage
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

    async def _offer_skills(self, skills: list[SkillSummary], events: Sequence[EventRecord]) -> OfferedSkills:
        """The skills shown this turn: relevant to the request and within the catalogue budget."""
        if self._skill_catalogue is None:
            return OfferedSkills(skills=tuple(skills))
        message = next((e.data for e in reversed(events) if e.type == "user_message"), {})
        budget = int(self._chat_role().context_window * self._settings.skill_catalogue_share)
        return await self._skill_catalogue.offer(
            skills, str(message.get("text", "")), budget, always=str(message.get("skill") or "")
        )

    def _step_options(
        self, events: Sequence[EventRecord], tools: list[ToolSpec], offered: OfferedSkills, last_step: bool
    ) -> tuple[Catalogue, dict[str, Any]]:
        """The catalogue shown in the system prompt (the same every step, so the prompt's prefix
        stays cacheable) and this step's schema, narrowed to what the model may do now."""
        skills = offered.skills
        actions = list(TURN_ENDING_ACTIONS)
        if self._peers is not None:
            # use_skill only when a skill is offered: a small model is not shown an action it cannot take.
            actions += ["call_tool", *(["use_skill"] if skills else []), "remember", "recall"]
        catalogue = Catalogue(
            tools=tuple((tool.name, tool.description) for tool in tools),
            skills=tuple((s.name, s.description) for s in skills),
            actions=tuple(actions),
            skills_left_out=offered.left_out,
        )
        skill = active_skill(events)
        offered_tools = tools
        if skill is not None and self._peers is not None:
            # A skill in use may open its files (read_skill_file); allowed-tools never narrows the tools.
            actions.append("read_skill_file")
        if last_step:
            # The last step may only answer, so every turn ends with a reply.
            step_actions = list(TURN_ENDING_ACTIONS)
        elif skill is not None and offered_tools and self._skill_needs_tool_calls(skill, events):
            # The skill asks to look before answering: this step may only call tools, its
            # pre-approved ones where they exist here.
            step_actions = ["call_tool"]
            pre_approved = set(skill.get("pre_approved_tools") or ())
            offered_tools = [tool for tool in tools if tool.name in pre_approved] or tools
        else:
            step_actions = [action for action in actions if action != "call_tool" or offered_tools]
        schema = self._schema.for_step(
            step_actions,
            max_text_chars=reply_cap(self._settings, self._models.config),
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

    async def _act(
        self, task_id: str, directive: Directive, events: Sequence[EventRecord], tools: list[ToolSpec], *, reason: str = ""
    ) -> Outcome:
        await self._record_recall(task_id, settle=True)  # in the log before any action
        action = directive.action
        if action in TURN_ENDING_ACTIONS:
            if action == "finish" and self._settings.remember_answers and self._peers is not None:
                await self._remember(task_id, directive.message, kind="answer")
            await self._store.complete_turn(task_id, directive.message, final=action == "finish", reason=reason or action)
            return "rest"
        assert self._peers is not None, "only respond/finish are offered without peers"
        if action == "call_tool":
            tool = str(directive.fields["tool"])
            call_id = uuid.uuid4().hex[:12]
            arguments = dict(directive.fields.get("arguments") or {})
            if tool in {spec.name for spec in client_tools(events)}:
                # The client runs its own functions: the turn ends here, its result comes as the next message.
                data = {"call_id": call_id, "tool": tool, "arguments": arguments, "client": True}
                await self._store.append_event(task_id, "tool_call", data)
                await self._store.complete_turn(task_id, "", final=False, reason="client_function_call")
                return "rest"
            await self._store.append_event(task_id, "tool_call", {"call_id": call_id, "tool": tool, "arguments": arguments})
            return await self._execute(task_id, call_id, tool, arguments)
        if action == "use_skill":
            await self._use_skill(task_id, str(directive.fields["skill"]))
            return "continue"
        if action == "read_skill_file":
            data = await read_file_event(
                self._peers, str(directive.fields["skill"]), str(directive.fields["path"]),
                int(directive.fields.get("part", 1)), self._skill_body_budget(), self._count_tokens(),
            )
            await self._store.append_event(task_id, "skill_used", data)
            return "continue"
        if action == "remember":
            await self._remember(task_id, str(directive.fields["text"]), kind="fact")
            return "continue"
        if action == "recall":
            await self._recall(task_id, str(directive.fields["query"]), automatic=False)
            return "continue"
        raise DirectiveError(f"unknown action {action}")

    async def _use_skill(self, task_id: str, name: str) -> None:
        """Loads a skill's body into the task (progressive disclosure: only now, only on use),
        the first part of it when it is over the body budget (skill_use.py)."""
        assert self._peers is not None
        data = await skill_event(self._peers, name, self._skill_body_budget(), self._count_tokens())
        await self._store.append_event(task_id, "skill_used", data)

    def _skill_body_budget(self) -> int:
        return max(200, int(self._chat_role().context_window * self._settings.skill_body_share))

    def _count_tokens(self) -> Callable[[str], Awaitable[int]] | None:
        return self._skill_catalogue.count if self._skill_catalogue is not None else None

    async def _execute(self, task_id: str, call_id: str, tool: str, arguments: dict[str, Any], approval_id: str = "") -> Outcome:
        assert self._peers is not None
        started = time.perf_counter()
        with span(f"execute_tool {tool}", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                                           "gen_ai.tool.call.id": call_id, "gen_ai.conversation.id": task_id}):
            outcome = await self._peers.execute_tool(task_id, tool, arguments, approval_id)
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if not outcome.ok and outcome.reason == "APPROVAL_REQUIRED" and not approval_id:
            approval = await self._peers.request_approval(task_id, tool, arguments)
            await self._store.wait_for_approval(
                task_id,
                {"approval_id": approval.id, "call_id": call_id, "tool": tool, "arguments": arguments, "action_hash": approval.action_hash},
            )
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

    def _recall_for_turn(self, task_id: str, events: Sequence[EventRecord]) -> None:
        if self._peers is None or self._settings.recall_top_k == 0:
            return
        message = next(e for e in reversed(events) if e.type == "user_message")
        if message.data.get("memory") is False:
            return  # the turn asked for no memory (the OpenAI-compatible endpoint's default)
        # Off the way to the first token (early_recall.py): recorded once ready.
        self._early_recalls.start(task_id, self._recall_data(task_id, str(message.data["text"]), automatic=True))

    async def _record_recall(self, task_id: str, *, settle: bool = False) -> None:
        data = await self._early_recalls.take(task_id, settle=settle)
        if data is not None:
            await self._store.append_event(task_id, "memory_recalled", data)

    async def _turn_without_memory(self, task_id: str) -> bool:
        events = await self._events(task_id)
        message = next((e for e in reversed(events) if e.type == "user_message"), None)
        return message is not None and message.data.get("memory") is False

    async def _recall(self, task_id: str, query: str, *, automatic: bool) -> None:
        await self._store.append_event(task_id, "memory_recalled", await self._recall_data(task_id, query, automatic=automatic))

    async def _recall_data(self, task_id: str, query: str, *, automatic: bool) -> dict[str, Any]:
        assert self._peers is not None
        data: dict[str, Any] = {"query": query, "automatic": automatic}
        started = time.perf_counter()
        if not automatic and await self._turn_without_memory(task_id):
            data.update(memory_ids=[], error="memory is off for this conversation", code="MEMORY_OFF")
            return data
        try:
            # Long-term memories and this task's own, above the memory service's threshold.
            memories = await self._peers.recall(query, self._settings.recall_top_k or 3, task_id=task_id)
        except PeerError as exc:
            data.update(memory_ids=[], error=exc.message, code=exc.reason or exc.code)
        else:
            data.update(
                memory_ids=[m.id for m in memories],
                memories=[{"id": m.id, "text": m.text, "score": round(m.score, 4), "scope": m.scope} for m in memories],
            )
        data["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return data

    async def _remember(self, task_id: str, text: str, *, kind: str) -> None:
        assert self._peers is not None
        started = time.perf_counter()
        # What the model remembers stays in this task's scope; a person promotes it to long-term.
        data: dict[str, Any] = {"text": text, "kind": kind, "scope": "task"}
        if await self._turn_without_memory(task_id):
            data.update(error="memory is off for this conversation", code="MEMORY_OFF")
            await self._store.append_event(task_id, "memory_stored", data)
            return
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
        self._early_recalls.drop(task_id)
        await self._store.fail_task(task_id, code, message)


def _follow_up(events: Sequence[EventRecord], start: int) -> Literal["free", "look", "answer"]:
    """What the step after the turn's last tool result may do, for a small model that would
    otherwise wander off a result it has: after a listing of paths, look further (read-only tools)
    or answer; after any other result that succeeded, answer; after a failure (or no result
    yet), anything."""
    results = [e for e in events if e.seq > start and e.type == "tool_result"]
    if not results or not results[-1].data.get("ok"):
        return "free"
    result = results[-1].data.get("result") or {}
    return "look" if isinstance(result.get("entries"), list) or isinstance(result.get("matches"), list) else "answer"


def _steps_in_turn(events: Sequence[EventRecord], start: int) -> int:
    """Decisions the model made in this turn: each directive and each unusable output."""
    return sum(
        1 for e in events
        if e.seq > start and (e.type == "directive" or (e.type == "error" and e.data.get("code") == "invalid_directive"))
    )


def _calls_in_turn(events: Sequence[EventRecord], start: int) -> list[tuple[str, str]]:
    return [
        (str(e.data.get("tool")), json.dumps(e.data.get("arguments") or {}, sort_keys=True))
        for e in events if e.seq > start and e.type == "tool_call"
    ]


def _same_call_made(events: Sequence[EventRecord], start: int, directive: Directive) -> bool:
    key = (str(directive.fields.get("tool")), json.dumps(directive.fields.get("arguments") or {}, sort_keys=True))
    return key in _calls_in_turn(events, start)


def _repeated_last_call(events: Sequence[EventRecord], start: int) -> bool:
    """The turn's last event says the model repeated a call: its next step may only answer."""
    turn = [e for e in events if e.seq > start]
    return bool(turn) and turn[-1].type == "error" and turn[-1].data.get("code") == "repeated_call"


def _reads_paths(tool: ToolSpec) -> bool:
    properties = tool.arguments_schema.get("properties") or {}
    return any(isinstance(spec, dict) and spec.get(PATH_KIND_KEY) for spec in properties.values())
