"""The staged decision: how the runtime gets a useful directive out of a small model.

The task is a growing plain transcript (`transcript.py`), and one step is decided in two short
stages instead of one long JSON generation:
1. *choose*: the candidate steps (answer, each tool, use_skill, remember, recall) are ranked by
   the log-probability of their first token after "Next step:", each less the model's leaning
   towards it with no request at all (contextual calibration): no generation, one call;
2. *fill*: only that step's fields are generated, under that step's own schema: a tool's
   arguments with paths limited to entries that exist in the workspace (or a safe pattern for a
   new file), other strings capped to what the step needs; an answer is one line of plain text.

The result is the same `Directive` the one-shot loop produces, so everything after it (storing,
acting, replay) is shared. Nothing here talks to a service or stores anything: the loop passes
in a function that records each model call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.common.json_schemas import validator_for
from services.runtime.completion_client import FLOOR_LOGPROB, CompletionModel, StepScores
from services.runtime.directives import Directive, DirectiveError
from services.runtime.fill_schema import PATH_KIND_KEY, file_named_in, fill_schema, required_path_kind
from services.runtime.intents import explicit_step, mentions_change
from services.runtime.model_client import ModelCall, TokenCallback
from services.runtime.peers import ToolSpec, WorkspaceEntry
from services.runtime.prompts import ANSWER, STEP_DESCRIPTIONS, short_description
from services.runtime.transcript import Header, render_header

__all__ = [
    "PATH_KIND_KEY",
    "Stage",
    "StagedDecider",
    "StepMenu",
    "calibrated_choice",
    "fill_schema",
]

# "calibrate": the baseline of a choice (below), a model call like the others.
Stage = Literal["calibrate", "choose", "fill", "answer"]
# Records one model call of a stage (the loop stores it as a model_call event).
RecordCall = Callable[[ModelCall, Stage], Awaitable[None]]

FILL_MAX_TOKENS = 200
FIELD_MAX_TOKENS = 60
# The request that carries no content: the model's leaning towards each step before it reads
# anything, divided out of its scores (contextual calibration).
CONTENT_FREE_REQUEST = "N/A"
# Baselines kept (each a few floats, keyed by its prompt): the oldest goes first.
CALIBRATIONS_KEPT = 256
# The most a step's score may gain from calibration over the most favoured step (in nats: e^3,
# about 20 times), so a first token the model hardly ever writes is not made a favourite.
MAX_CALIBRATION_BOOST = 3.0


@dataclass(frozen=True)
class StepMenu:
    """What the model may do in this step."""

    tools: Sequence[ToolSpec] = ()
    skills: Sequence[tuple[str, str]] = ()
    memory: bool = False
    # Only an answer (the last step, or after a repeated call), or only a tool (a skill that
    # asks to look first).
    answer_only: bool = False
    tools_only: bool = False
    # Existing workspace entries, for path arguments; None where no listing is known.
    workspace: Sequence[WorkspaceEntry] | None = None
    # The turn's request: a path it names is the one a path argument takes.
    request: str = ""
    # A listing or search result is in this turn: the files it names can be read.
    paths_listed: bool = False
    # No tool has run yet in this turn: a request that names its step outright gets that step.
    first_step: bool = False
    # The reply the runtime computed from the turn's last result (grounding.exact_answer), given
    # as the answer when the step is to answer.
    exact_answer: str = ""
    # What a file write may hold, where the request states it (write_content.py).
    write_choices: tuple[str, ...] = ()
    # The commands the request types out (intents.stated_commands).
    command_choices: tuple[tuple[str, ...], ...] = ()

    def all_steps(self) -> list[str]:
        steps = [ANSWER, *(tool.name for tool in self.tools)]
        if self.skills:
            steps.append("use_skill")
        if self.memory:
            steps += ["remember", "recall"]
        return steps

    def steps(self) -> list[str]:
        if self.answer_only:
            return [ANSWER]
        names = [tool.name for tool in self.tools if self._can_offer(tool)]
        if self.tools_only and names:
            return names
        steps = [step for step in self.all_steps() if step in names or step not in self._tool_names()]
        named = explicit_step(self.request, steps, self.workspace) if self.first_step else None
        return [named] if named else steps

    def _tool_names(self) -> set[str]:
        return {tool.name for tool in self.tools}

    def _can_offer(self, tool: ToolSpec) -> bool:
        """A tool that needs an existing file is offered only once a file is known: the request
        names one, or a listing in this turn showed them. Otherwise the model could only guess
        a file, and a request like "find the CSV file" or "create hello.txt" is not served by
        reading some file first. A tool that creates or writes an entry is offered only where
        the request speaks of a change: "say hello" never gets an approval card."""
        kind = required_path_kind(tool)
        if kind == "new":
            # A tool that creates or writes an entry: only for a request that speaks of a change.
            return mentions_change(self.request)
        if self.workspace is None or self.paths_listed or kind != "file":
            return True
        return any(not entry.is_dir and file_named_in(entry.path, self.request) for entry in self.workspace)


@dataclass
class StagedDecider:
    """Decides one step: choose, then fill. Raises DirectiveError when the model's output cannot
    be used, as the one-shot parse does."""

    model: CompletionModel
    system_prompt: str
    max_text_chars: int
    role: str = "chat"
    # Off in a replay, where the recorded choice stands on its own.
    calibrate: bool = True
    _calibration: dict[str, dict[str, float]] = field(default_factory=dict, init=False)

    def header(self, menu: StepMenu) -> str:
        """The transcript's fixed part: the same for every step of a turn (all steps listed, even
        when this one may take fewer), so it stays cached."""
        described = {tool.name: short_description(tool.description) for tool in menu.tools}
        steps = tuple(
            (name, described.get(name) or STEP_DESCRIPTIONS.get(name, name)) for name in menu.all_steps()
        )
        return render_header(Header(self.system_prompt, steps, tuple(menu.skills)))

    async def decide(self, prompt: str, menu: StepMenu, record: RecordCall,
                     on_answer_token: TokenCallback | None = None, session: str = "", fresh: bool = False) -> Directive:
        """`prompt` is the header and the rendered events; each stage appends its line to it.
        `session` (the task) keeps its calls where the model server holds its prompt; `fresh`:
        the server holds nothing of the task yet (no model call of it so far)."""
        calls = _Calls(self.model, self.role, session)
        steps = menu.steps()
        step = steps[0] if len(steps) == 1 else await self._choose(calls, prompt, steps, menu, record, fresh)
        prompt += f"Next step: {step}\n"
        if step == ANSWER and menu.exact_answer:
            if on_answer_token is not None:
                await on_answer_token(menu.exact_answer)
            return _directive("respond", {"message": menu.exact_answer})
        if step == ANSWER:
            text = await self._text(calls, prompt + "Answer:", record, "answer", self._answer_tokens(), on_answer_token)
            return _directive("respond", {"message": text})
        if step == "remember":
            return _directive("remember", {"text": await self._text(calls, prompt + "Fact:", record, "fill", FIELD_MAX_TOKENS)})
        if step == "recall":
            return _directive("recall", {"query": await self._text(calls, prompt + "Query:", record, "fill", FIELD_MAX_TOKENS)})
        if step == "use_skill":
            value = await self._json(calls, prompt + "Skill:", {"enum": [name for name, _ in menu.skills]}, record)
            return _directive("use_skill", {"skill": value})
        tool = next(t for t in menu.tools if t.name == step)
        schema = fill_schema(tool.arguments_schema, menu.workspace, self.max_text_chars, menu.request,
                             menu.write_choices, menu.command_choices)
        arguments = await self._json(calls, prompt + "Arguments:", schema, record)
        return _directive("call_tool", {"tool": tool.name, "arguments": arguments})

    def _answer_tokens(self) -> int:
        # About three characters a token, with room to end the last sentence.
        return max(32, self.max_text_chars // 3 + 16)

    async def _choose(self, calls: _Calls, prompt: str, steps: list[str], menu: StepMenu, record: RecordCall,
                      fresh: bool) -> str:
        """The step whose first token the model finds likeliest next, relative to how likely it
        finds it with no request at all, so a small model's fixed leanings cancel out."""
        # The baseline first. It shares the header with the task's prompt: where the task's slot
        # holds nothing of the task yet, the server evaluates the header once for both there.
        # Later it goes elsewhere, so the task's slot keeps every token the task evaluated.
        header = self.header(menu)
        where = calls if fresh else _Calls(self.model, self.role, "")
        baseline = await self._baseline(where, header, steps, record)
        scores, call = await calls.first_token_scores(prompt + "Next step:", steps)
        chosen = calibrated_choice(scores, baseline)
        call.text = chosen
        await record(call, "choose")
        return chosen

    async def _baseline(self, calls: _Calls, header: str, steps: list[str], record: RecordCall) -> StepScores:
        """The scores after a request with no content (N/A). The same baseline serves every step
        of a turn: one that also blanked the results would cancel the model's right lean towards
        answering once a result is there."""
        if not self.calibrate:
            return {}
        prompt = f"{header}\nRequest: {CONTENT_FREE_REQUEST}\nNext step:"
        key = prompt + "\x00" + "\x00".join(steps)
        if key not in self._calibration:
            scores, call = await calls.first_token_scores(prompt, steps)
            await record(call, "calibrate")
            if len(self._calibration) >= CALIBRATIONS_KEPT:
                self._calibration.pop(next(iter(self._calibration)))
            self._calibration[key] = scores
        return self._calibration[key]

    async def _json(self, calls: _Calls, prompt: str, schema: dict[str, Any], record: RecordCall) -> Any:
        # The value is generated after the label's space, so the transcript's later
        # `Label: <value>` is byte for byte what the server evaluated and generated.
        call = await calls.complete(prompt + " ", json_schema=schema, max_tokens=FILL_MAX_TOKENS,
                                    temperature=0.0, stop=["\n"])
        await record(call, "fill")
        try:
            value = json.loads(call.text)
        except json.JSONDecodeError as exc:
            cut = " (the output was cut off)" if call.finish_reason == "length" else ""
            raise DirectiveError(f"the arguments are not JSON ({exc.msg}){cut}") from None
        error = next(iter(validator_for(schema).iter_errors(value)), None)
        if error is not None:
            raise DirectiveError(f"the arguments do not fit the step's schema: {error.message[:200]}")
        return value

    async def _text(self, calls: _Calls, prompt: str, record: RecordCall, stage: Stage, max_tokens: int,
                    on_token: TokenCallback | None = None) -> str:
        # Greedy and without a repetition penalty: a small model's best chance of copying the
        # fact from a result rather than drifting off it.
        call = await calls.complete(prompt, max_tokens=max_tokens, stop=["\n"], on_token=on_token,
                                    temperature=0.0, copying=True)
        await record(call, stage)
        text = _tidy(call.text, cut=call.finish_reason == "length", limit=self.max_text_chars)
        if not text:
            raise DirectiveError(f"the {stage} step's output is blank")
        return text


@dataclass(frozen=True)
class _Calls:
    """One decision's model calls: the decider's role, on the task's session."""

    model: CompletionModel
    role: str
    session: str

    async def first_token_scores(self, prompt: str, candidates: Sequence[str]) -> tuple[StepScores, ModelCall]:
        return await self.model.first_token_scores(self.role, prompt, candidates, session=self.session)

    async def complete(self, prompt: str, *, json_schema: dict[str, Any] | None = None, max_tokens: int,
                       temperature: float | None = None, stop: Sequence[str] = (),
                       on_token: TokenCallback | None = None, copying: bool = False) -> ModelCall:
        return await self.model.complete(self.role, prompt, json_schema=json_schema, max_tokens=max_tokens,
                                         temperature=temperature, stop=stop, on_token=on_token, copying=copying,
                                         session=self.session)


def calibrated_choice(scores: StepScores, baseline: StepScores) -> str:
    """The best step by `score - baseline` (contextual calibration). A step the model never
    leans to without a request gets at most MAX_CALIBRATION_BOOST over the most favoured one, so
    a rare first token is not inflated; a step whose first token is not among the likeliest at
    all cannot win unless none is."""
    top = max(baseline.values(), default=0.0)
    seen = [step for step, score in scores.items() if score > FLOOR_LOGPROB] or list(scores)

    def calibrated(step: str) -> float:
        return scores[step] - max(baseline.get(step, top), top - MAX_CALIBRATION_BOOST)

    return max(seen, key=calibrated)


def _directive(action: str, fields: dict[str, Any]) -> Directive:
    raw = json.dumps({"action": action, **fields}, ensure_ascii=False)
    return Directive(action=action, fields=fields, raw=raw)


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
# The same words three times or more in a row ("Birdwatch; Birdwatch; Birdwatch"): a small model
# copying without a repetition penalty can loop, and the loop says nothing the first one did not.
_LOOPED = re.compile(r"(\S.{2,}?)(?:[\s;,.]+\1){2,}")


def _unlooped(text: str) -> tuple[str, bool]:
    """`text` with each run of repeats said once, and whether it looped until it was cut off
    (a repeat left unfinished at its end is dropped)."""
    cut = False
    while (loop := _LOOPED.search(text)) is not None:
        unit, rest = loop.group(1), text[loop.end():]
        tail = rest.strip(" ;,.")
        if not tail:  # it looped until the output ended: treated as cut off there
            rest, cut = rest.strip(" ;,"), True
        elif unit.startswith(tail):
            rest, cut = "", True
        text = text[: loop.start()] + unit + rest
    return text, cut


def _tidy(text: str, *, cut: bool, limit: int) -> str:
    """Plain text as a reply: trimmed, within `limit`, and where the model was cut off, ending on
    its last whole sentence (or marked with an ellipsis when that would drop most of it)."""
    text, looped = _unlooped(text.strip())
    cut = cut or looped
    if len(text) > limit:
        text, cut = text[:limit], True
    if cut:
        ends = [match.end() for match in _SENTENCE_END.finditer(text)]
        text = text[: ends[-1]] if ends and ends[-1] > len(text) // 3 else text.rstrip() + "…"
    return text.strip()
