"""Action directives: the JSON the model must emit each step.

The base schema is a file (config/action_directive.schema.json). For each step the runtime
narrows it to the actions available then, sends that to the model server as
`response_format.json_schema`, and validates the output against the same narrowed schema, so an
unconstrained or truncated output is caught here and never acted on.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

__all__ = ["Directive", "DirectiveError", "DirectiveSchema"]


class DirectiveError(ValueError):
    """The model's output is not a valid directive for this step; the message says why."""


@dataclass(frozen=True)
class Directive:
    action: str
    fields: dict[str, Any]
    # The exact text the model produced (kept so replays and prompts reuse it byte for byte).
    raw: str

    @property
    def message(self) -> str:
        return str(self.fields.get("message", ""))


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

    def for_step(self, actions: list[str], *, max_text_chars: int | None = None) -> dict[str, Any]:
        """A schema admitting only `actions` (in that order). `max_text_chars` caps free-text
        fields further, so a small model's answer ends well inside its token limit."""
        unknown = [action for action in actions if action not in self._branches]
        if unknown:
            raise ValueError(f"unknown directive actions: {unknown}")
        branches = [copy.deepcopy(self._branches[action]) for action in actions]
        if max_text_chars is not None:
            for branch in branches:
                for prop in branch["properties"].values():
                    if prop.get("type") == "string" and "maxLength" in prop:
                        prop["maxLength"] = min(prop["maxLength"], max_text_chars)
        if len(branches) == 1:
            return branches[0]
        return {"oneOf": branches}

    def parse(self, text: str, step_schema: dict[str, Any]) -> Directive:
        """Parses and validates model output; raises DirectiveError with a short reason."""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            snippet = text[:80] + ("…" if len(text) > 80 else "")
            raise DirectiveError(f"output is not JSON ({exc.msg} at char {exc.pos}): {snippet!r}") from None
        errors = sorted(Draft202012Validator(step_schema).iter_errors(value), key=lambda e: e.path)
        if errors:
            raise DirectiveError(f"output does not match the directive schema: {_describe(errors[0], value)}")
        assert isinstance(value, dict)
        for key in ("message", "text", "query"):
            if key in value and not str(value[key]).strip():
                raise DirectiveError(f"`{key}` must not be blank")
        action = str(value["action"])
        return Directive(action=action, fields={k: v for k, v in value.items() if k != "action"}, raw=text)


def _describe(error: Any, value: Any) -> str:
    if isinstance(value, dict) and "action" in value and error.validator == "oneOf":
        return f"no available action matches {json.dumps(value)[:120]}"
    location = "/".join(str(part) for part in error.path) or "(root)"
    return f"{location}: {error.message[:200]}"
