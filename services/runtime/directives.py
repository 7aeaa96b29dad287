"""Action directives: the JSON the model must emit each step.

The base schema is a file (config/action_directive.schema.json). For each step the runtime
narrows it to the actions available then, sends that to the model server as
`response_format.json_schema`, and validates the output against the same narrowed schema, so an
unconstrained or truncated output is caught here and never acted on.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from services.common.json_schemas import validator_for
from services.common.vocabulary import TURN_ENDING_ACTIONS
from services.runtime.model_text import ModelJSONError, load_model_json
from services.runtime.schema_caps import cap_sizes, without_annotations

__all__ = ["Directive", "DirectiveError", "DirectiveSchema"]


class DirectiveError(ValueError):
    """The model's output is not a valid directive for this step; the message says why and
    `output` holds what the model wrote."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class Directive:
    action: str
    fields: dict[str, Any]
    # The exact text the model produced (kept so replays and prompts reuse it byte for byte).
    raw: str

    @property
    def message(self) -> str:
        message = self.fields.get("message", "")
        # With a reply schema the message is a JSON value; the reply is its JSON text.
        return message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)


class DirectiveSchema:
    """The base directive schema and the narrowed, per-step schemas built from it."""

    def __init__(self, base: dict[str, Any]) -> None:
        Draft202012Validator.check_schema(base)
        self._branches: dict[str, dict[str, Any]] = {
            branch["properties"]["action"]["const"]: branch for branch in base["oneOf"]
        }

    @classmethod
    def load(cls, path: Path) -> DirectiveSchema:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    @property
    def actions(self) -> list[str]:
        return list(self._branches)

    def for_step(
        self,
        actions: list[str],
        *,
        max_text_chars: int | None = None,
        tools: Sequence[tuple[str, dict[str, Any]]] = (),
        skills: Sequence[str] = (),
        reply_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A schema admitting only `actions` (in that order).

        `call_tool` becomes one branch per tool in `tools` (name, arguments schema), so the model
        can only name a tool that exists, with arguments of the right shape; `use_skill` admits
        only the names in `skills`. `max_text_chars` caps free-text fields further, so a small
        model's answer ends well inside its token limit. `reply_schema` replaces the answer's
        free-text `message` of `respond` and `finish` with a JSON value of that schema.
        """
        unknown = [action for action in actions if action not in self._branches]
        if unknown:
            raise ValueError(f"unknown directive actions: {unknown}")
        branches: list[dict[str, Any]] = []
        for action in actions:
            if action == "call_tool":
                branches.extend(self._tool_branch(name, schema) for name, schema in tools)
                continue
            branch = copy.deepcopy(self._branches[action])
            if action == "use_skill":
                if not skills:
                    continue
                branch["properties"]["skill"] = {"enum": list(skills)}
            if reply_schema is not None and action in TURN_ENDING_ACTIONS:
                branch["properties"]["message"] = copy.deepcopy(reply_schema)
            branches.append(branch)
        if max_text_chars is not None:
            for branch in branches:
                cap_sizes(branch, max_text_chars)
        if not branches:
            raise ValueError("a step must offer at least one action")
        if len(branches) == 1:
            return branches[0]
        return {"oneOf": branches}

    def _tool_branch(self, name: str, arguments_schema: dict[str, Any]) -> dict[str, Any]:
        branch = copy.deepcopy(self._branches["call_tool"])
        branch["properties"]["tool"] = {"const": name}
        branch["properties"]["arguments"] = without_annotations(arguments_schema) or {"type": "object"}
        return branch

    def parse(self, text: str, step_schema: dict[str, Any]) -> Directive:
        """Parses and validates model output; raises DirectiveError with a short reason."""
        try:
            value = load_model_json(text)
        except ModelJSONError as exc:
            raise DirectiveError(str(exc)) from None
        errors = sorted(validator_for(step_schema).iter_errors(value), key=lambda e: e.path)
        if errors:
            raise DirectiveError(f"output does not match the directive schema: {_describe(errors[0], value)}")
        assert isinstance(value, dict)
        for key in ("message", "text", "query"):
            if key in value and not str(value[key]).strip():
                raise DirectiveError(f"`{key}` must not be blank")
        action = str(value["action"])
        return Directive(action=action, fields={k: v for k, v in value.items() if k != "action"}, raw=text)


def _describe(error: Any, value: Any) -> str:
    if isinstance(value, dict) and "action" in value and error.validator in ("oneOf", "const"):
        return f"no available action matches {json.dumps(value)[:120]}"
    location = "/".join(str(part) for part in error.path) or "(root)"
    return f"{location}: {error.message[:200]}"
