"""The agent loop: one user turn of a task, step by step, until the task comes to rest.

Each step builds the context from the turn's events (turn.py: read from the log once when the
turn starts or resumes, then carried in memory as each event commits), asks the `chat` role for a directive
constrained by the step's schema (only the actions, tools and skills available then),
validates it, stores it, and carries it out. Every event is committed before the next step
starts, so a restart resumes from the log without repeating a tool call that completed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from services.common.tracing import model_call_span, span
from services.common.vocabulary import TURN_ENDING_ACTIONS, ApprovalState
from services.runtime import events as ev
from services.runtime.client_functions import client_tools, merge_tools
from services.runtime.compaction import summarise
from services.runtime.completion_client import NativeApiMissing
from services.runtime.config import Settings
from services.runtime.context import (
    INVALID_DIRECTIVE,
    REPEATED_CALL,
    build_messages,
    compaction,
    estimate_tokens,
)
from services.runtime.directives import Directive, DirectiveError, DirectiveSchema
from services.runtime.memory_steps import MemorySteps
from services.runtime.metrics import observe_tool_call
from services.runtime.model_client import ChatModel, ModelCall
from services.runtime.models_config import RoleConfig
from services.runtime.peers import Peers, SkillSummary, ToolSpec
from services.runtime.reply_stream import ReplyExtractor
from services.runtime.skill_catalogue import OfferedSkills, SkillCatalogue
from services.runtime.skill_use import read_file_event, skill_event
from services.runtime.staged import Stage, StagedDecider
from services.runtime.staged_step import decide_staged, reply_cap
from services.runtime.step_options import step_options
from services.runtime.storage import TaskStorage
from services.runtime.turn import RecentTurns, TurnState

__all__ = ["RuntimeLoop"]

log = logging.getLogger(__name__)

Outcome = Literal["continue", "rest"]


class RuntimeLoop:
    def __init__(
        self, settings: Settings, store: TaskStorage, models: ChatModel, schema: DirectiveSchema, peers: Peers | None,
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
        # The turn each running task is in (a task runs one turn at a time).
        self._turns: dict[str, TurnState] = {}
        self._recent = RecentTurns()
        self._memory = MemorySteps(settings, peers, self._append) if peers is not None else None

    @property
    def peers(self) -> Peers | None:
        return self._peers

    # -- the turn ----------------------------------------------------------------------------

    async def run_turn(self, task_id: str) -> None:
        """Runs the task (status RUNNING) until it completes, fails or waits for a human."""
        # The only read of the log (what came after the task's last turn, where that is kept).
        turn = await self._recent.open(task_id, lambda after: self._store.list_events(task_id, after_seq=after, limit=1_000_000))
        self._turns[task_id] = turn
        try:
            await self._run(turn)
            self._recent.keep(turn)
        finally:
            if self._turns.get(task_id) is turn:
                del self._turns[task_id]

    async def _run(self, turn: TurnState) -> None:
        task_id = turn.task_id
        # The catalogue is read once per turn: the same for every step, so the prompt's prefix
        # stays cacheable; skills added on disk show up from the next turn.
        tools = merge_tools(await self._tools(), client_tools(turn.message))
        skills = await self._peers.list_skills() if self._peers is not None else []
        if await self._settle_pending_call(turn, tools) == "rest":
            return
        if turn.is_new:
            if self._memory is not None:
                self._memory.recall_for_turn(turn)
            requested = turn.message.skill if turn.message is not None else None
            if requested:
                await self._use_skill(task_id, requested)
        offered = await self._offer_skills(skills, turn)  # hook: skill_catalogue.py
        repairs = 0
        while True:
            if self._memory is not None:
                await self._memory.record_ready(turn)
            steps = turn.steps
            if steps >= self._settings.max_steps:
                await self._fail(task_id, "step_limit", f"no answer within {self._settings.max_steps} steps")
                return
            spent = turn.tokens_spent
            if spent >= self._settings.token_budget:
                await self._fail(task_id, "token_budget", f"token budget of {self._settings.token_budget} spent ({spent})")
                return
            last_step = steps == self._settings.max_steps - 1
            catalogue, step_schema = step_options(
                self._schema, turn, tools, offered, with_peers=self._peers is not None, last_step=last_step,
                max_text_chars=reply_cap(self._settings, self._models.config),
            )
            messages = build_messages(self._settings.system_prompt, catalogue, turn.events)
            fit = await self._fit_context(turn, messages)
            if fit == "full":
                return
            if fit == "compacted":
                continue
            forced = "step_limit" if last_step else ("repeated_call" if turn.repeated_last_call() else "")
            try:
                directive = None
                decider = self._decider
                if decider is not None:
                    try:
                        directive = await self._decide_staged(decider, turn, tools, list(offered.skills),
                                                              forced=bool(forced))
                    except NativeApiMissing as exc:
                        log.warning("%s; asking for one JSON directive per step from now on", exc.message)
                        self._decider = None
                if directive is None:
                    directive = await self._decide_once(task_id, messages, step_schema)
            except DirectiveError as exc:
                repairs += 1
                invalid = ev.Error(code=INVALID_DIRECTIVE, message=str(exc), output=exc.output)
                turn.add(await self._store.record_step(task_id, *ev.entry(invalid)))
                if repairs > self._settings.max_repairs:
                    await self._fail(task_id, "invalid_directive", f"the model gave {repairs} invalid directives in a row: {exc}")
                    return
                continue
            repairs = 0
            # Stored as chosen, every field kept (events.Directive reads it back).
            decided = {"action": directive.action, **directive.fields, "raw": directive.raw}
            turn.add(await self._store.record_step(task_id, ev.Directive.type, decided))
            if directive.action == "call_tool" and turn.made_call(str(directive.fields.get("tool")), directive.fields.get("arguments")):
                # Running it again would give the same result: say so, and let the next step only answer.
                await self._append(turn, ev.Error(
                    code=REPEATED_CALL,
                    message=f"{directive.fields.get('tool')} was already called with these arguments in this turn; "
                    "answer with the result above",
                ))
                continue
            if await self._act(turn, directive, tools, reason=forced) == "rest":
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
        self, decider: StagedDecider, turn: TurnState, tools: list[ToolSpec], skills: list[SkillSummary], *, forced: bool,
    ) -> Directive:
        """Choose the step, then fill it (staged_step.py), over the task's transcript."""
        task_id = turn.task_id

        async def record(call: ModelCall, stage: Stage) -> None:
            await self._record_call(task_id, call, stage=stage)

        async def stream_answer(text: str) -> None:
            self._store.publish_live(task_id, "model_token", ev.to_data(ev.ModelToken(text=text, reply=text)))

        return await decide_staged(decider, turn, tools, skills, forced=forced, peers=self._peers, record=record,
                                   stream_answer=stream_answer)

    async def _call_model(self, task_id: str, messages: list[dict[str, str]], step_schema: dict[str, Any]) -> ModelCall:
        reply = ReplyExtractor()

        async def stream_token(text: str) -> None:
            self._store.publish_live(task_id, "model_token", ev.to_data(ev.ModelToken(text=text, reply=reply.feed(text))))

        call = await self._models.chat("chat", messages, json_schema=step_schema, on_token=stream_token, session=task_id)
        await self._record_call(task_id, call)
        return call

    async def _record_call(self, task_id: str, call: ModelCall, purpose: str = "", stage: str = "") -> None:
        model_call_span("text_completion" if stage else "chat", model=call.model, role=call.role, latency_ms=call.latency_ms,
                        input_tokens=call.prompt_tokens, output_tokens=call.completion_tokens,
                        cached_input_tokens=call.cached_prompt_tokens, finish_reason=call.finish_reason,
                        conversation_id=task_id, purpose=purpose or stage)
        data = {**call.as_event_data(), **({"purpose": purpose} if purpose else {}), **({"stage": stage} if stage else {})}
        event = await self._store.record_model_call(
            task_id,
            data,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            cached_prompt_tokens=call.cached_prompt_tokens,
        )
        turn = self._turns.get(task_id)
        if turn is not None:
            turn.add(event)

    async def _append(self, turn: TurnState, payload: ev.Payload) -> None:
        """Commits an event of the turn and carries it in the turn's state."""
        turn.add(await self._store.append_event(turn.task_id, *ev.entry(payload)))

    # -- what the model may do this step -----------------------------------------------------

    async def _tools(self) -> list[ToolSpec]:
        return await self._peers.list_tools() if self._peers is not None else []

    async def _offer_skills(self, skills: list[SkillSummary], turn: TurnState) -> OfferedSkills:
        """The skills shown this turn: relevant to the request and within the catalogue budget."""
        if self._skill_catalogue is None:
            return OfferedSkills(skills=tuple(skills))
        message = turn.message or ev.UserMessage()
        budget = int(self._chat_role().context_window * self._settings.skill_catalogue_share)
        return await self._skill_catalogue.offer(skills, message.text, budget, always=message.skill or "")

    # -- carrying out a directive ------------------------------------------------------------

    async def _act(self, turn: TurnState, directive: Directive, tools: list[ToolSpec], *, reason: str = "") -> Outcome:
        task_id = turn.task_id
        if self._memory is not None:
            await self._memory.record_ready(turn, settle=True)  # in the log before any action
        action = directive.action
        if action in TURN_ENDING_ACTIONS:
            if action == "finish" and self._settings.remember_answers and self._memory is not None:
                await self._memory.remember(turn, directive.message, kind="answer")
            await self._store.complete_turn(task_id, directive.message, final=action == "finish", reason=reason or action)
            return "rest"
        assert self._peers is not None and self._memory is not None, "only respond/finish are offered without peers"
        if action == "call_tool":
            tool = str(directive.fields["tool"])
            call_id = uuid.uuid4().hex[:12]
            arguments = dict(directive.fields.get("arguments") or {})
            if tool in {spec.name for spec in client_tools(turn.message)}:
                # The client runs its own functions: the turn ends here, its result comes as the next message.
                await self._append(turn, ev.ToolCall(call_id=call_id, tool=tool, arguments=arguments, client=True))
                await self._store.complete_turn(task_id, "", final=False, reason="client_function_call")
                return "rest"
            await self._append(turn, ev.ToolCall(call_id=call_id, tool=tool, arguments=arguments))
            return await self._execute(task_id, call_id, tool, arguments)
        if action == "use_skill":
            await self._use_skill(task_id, str(directive.fields["skill"]))
            return "continue"
        if action == "read_skill_file":
            used = await read_file_event(
                self._peers, str(directive.fields["skill"]), str(directive.fields["path"]),
                int(directive.fields.get("part", 1)), self._skill_body_budget(), self._count_tokens(),
            )
            await self._append(turn, used)
            return "continue"
        if action == "remember":
            await self._memory.remember(turn, str(directive.fields["text"]), kind="fact")
            return "continue"
        if action == "recall":
            await self._memory.recall(turn, str(directive.fields["query"]), automatic=False)
            return "continue"
        raise DirectiveError(f"unknown action {action}")

    async def _use_skill(self, task_id: str, name: str) -> None:
        """Loads a skill's body into the task (progressive disclosure: only now, only on use),
        the first part of it when it is over the body budget (skill_use.py)."""
        assert self._peers is not None
        await self._append(self._turns[task_id], await skill_event(self._peers, name, self._skill_body_budget(), self._count_tokens()))

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
        approval = outcome.approval_required
        if approval is not None:
            # Nothing ran: the tools service recorded the pending approval with its answer.
            await self._store.wait_for_approval(task_id, ev.to_data(ev.ApprovalRequested(
                approval_id=approval.id, call_id=call_id, tool=tool, arguments=arguments, action_hash=approval.action_hash,
            )))
            return "rest"
        await self._tool_result(
            task_id, call_id, tool, ok=outcome.ok, result=outcome.result, error=outcome.error, code=outcome.code,
            duration_ms=duration_ms,
        )
        return "continue"

    async def _tool_result(self, task_id: str, call_id: str, tool: str, *, ok: bool, result: dict[str, Any] | None = None,
                           error: str = "", code: str = "", denied: bool | None = None, interrupted: bool | None = None,
                           duration_ms: float | None = None) -> None:
        await self._append(self._turns[task_id], ev.ToolResult(
            call_id=call_id, tool=tool, ok=ok, result=result or {}, error=error, code=code or None, denied=denied,
            interrupted=interrupted, duration_ms=duration_ms,
        ))
        observe_tool_call(tool, "ok" if ok else ("denied" if denied else "error"))

    async def _settle_pending_call(self, turn: TurnState, tools: list[ToolSpec]) -> Outcome:
        """Finishes a tool call the log left open: after an approval decision, or after a crash
        while it ran. A call that may have run is never silently repeated unless read-only."""
        task_id = turn.task_id
        if turn.last_call_at < 0:
            return "continue"
        call = turn.events[turn.last_call_at].payload
        assert isinstance(call, ev.ToolCall)
        # What settles a call (its result, approval, decision) comes after it.
        payloads = [e.payload for e in turn.events[turn.last_call_at + 1:]]
        if call.client:
            return "continue"  # the client ran it; its result is in the user's message
        if any(isinstance(p, ev.ToolResult) and p.call_id == call.call_id for p in payloads):
            return "continue"
        requested = [p for p in payloads if isinstance(p, ev.ApprovalRequested) and p.call_id == call.call_id]
        if requested:
            approval_id = requested[-1].approval_id
            decided = [p for p in payloads if isinstance(p, ev.ApprovalDecided) and p.approval_id == approval_id]
            if not decided:
                return "rest"
            decision = decided[-1]
            if decision.decision == ApprovalState.APPROVED:
                assert self._peers is not None
                if (await self._peers.get_approval(approval_id)).state == ApprovalState.USED:
                    # Consumed by an execution that the runtime did not see finish: never re-run.
                    await self._interrupted(task_id, call.call_id, call.tool)
                    return "continue"
                return await self._execute(task_id, call.call_id, call.tool, dict(call.arguments), approval_id)
            reason = f": {decision.reason}" if decision.reason else ""
            await self._tool_result(
                task_id, call.call_id, call.tool, ok=False, denied=True,
                error=f"the user {decision.decision} this action{reason}",
            )
            return "continue"
        read_only = {tool.name for tool in tools if tool.read_only and not tool.requires_approval}
        if call.tool in read_only:
            log.info("re-running read-only tool call %s after a restart", call.call_id, extra={"task_id": task_id})
            return await self._execute(task_id, call.call_id, call.tool, dict(call.arguments))
        await self._interrupted(task_id, call.call_id, call.tool)
        return "continue"

    async def _interrupted(self, task_id: str, call_id: str, tool: str) -> None:
        await self._tool_result(
            task_id, call_id, tool, ok=False, interrupted=True,
            error="the runtime stopped while this tool call ran; it was not repeated, and it may or may not have "
            "taken effect. Check before calling it again.",
        )

    # -- compaction and failure --------------------------------------------------------------

    async def _fit_context(self, turn: TurnState, messages: list[dict[str, str]]) -> Literal["fits", "compacted", "full"]:
        """Compacts older events when the prompt nears the window; "full" (the task has failed)
        when even that cannot make room."""
        role = self._chat_role()
        limit = int(role.context_window * self._settings.compact_ratio) - role.max_tokens
        if estimate_tokens(messages) <= limit:
            return "fits"
        events = turn.events
        previous = compaction(events)
        after = previous.up_to_seq if previous is not None else 0
        keep = self._settings.compact_keep_events
        covered = [e for e in events if e.seq > after][:-keep] if len(events) > keep else []
        if not covered:
            await self._fail(turn.task_id, "context_full", "the context window is full even after compaction")
            return "full"
        summary, method, call = await summarise(self._models, "chat", covered)
        await self._record_call(turn.task_id, call, purpose="compaction")
        await self._append(turn, ev.ContextCompacted(summary=summary, up_to_seq=covered[-1].seq, method=method))
        return "compacted"

    def _chat_role(self) -> RoleConfig:
        role = self._models.config.role("chat")
        assert role is not None, "load_models_config refuses a models file without a chat role"
        return role

    async def _fail(self, task_id: str, code: str, message: str) -> None:
        log.warning("task failed: %s", message, extra={"task_id": task_id})
        if self._memory is not None:
            self._memory.drop(task_id)
        await self._store.fail_task(task_id, code, message)
