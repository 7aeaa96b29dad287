"""The directive schema: narrowing per step, validation, and that no model output crashes it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.config import repo_root
from services.runtime.directives import DirectiveError, DirectiveSchema

SCHEMA = DirectiveSchema.load(repo_root() / "config" / "action_directive.schema.json")
STEP = SCHEMA.for_step(["respond", "finish"])


def test_the_schema_file_declares_every_action() -> None:
    assert SCHEMA.actions == ["respond", "finish", "call_tool", "use_skill", "read_skill_file", "remember", "recall"]


def test_a_valid_directive_parses_with_its_raw_text() -> None:
    text = '{"action": "respond", "message": "Hello!"}'
    directive = SCHEMA.parse(text, STEP)
    assert directive.action == "respond"
    assert directive.message == "Hello!"
    assert directive.raw == text


def test_a_narrowed_schema_refuses_actions_not_offered() -> None:
    with pytest.raises(DirectiveError, match="no available action"):
        SCHEMA.parse('{"action": "remember", "text": "x"}', STEP)


def test_a_single_action_step_schema_is_that_branch() -> None:
    only = SCHEMA.for_step(["finish"])
    assert only["properties"]["action"] == {"const": "finish"}
    with pytest.raises(ValueError, match="unknown"):
        SCHEMA.for_step(["fly"])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not JSON"),
        ('{"action": "respond", "message": "cut o', "not JSON"),
        ("[]", "does not match"),
        ('{"action": "respond"}', "no available action"),
        ('{"action": "respond", "message": ""}', "no available action"),
        ('{"action": "respond", "message": "   "}', "must not be blank"),
        ('{"action": "respond", "message": "hi", "extra": 1}', "no available action"),
        ('{"action": "respond", "message": 7}', "no available action"),
    ],
)
def test_invalid_outputs_raise_a_directive_error_that_says_why(text: str, reason: str) -> None:
    with pytest.raises(DirectiveError, match=reason):
        SCHEMA.parse(text, STEP)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_no_model_output_escapes_as_anything_but_a_directive_error(text: str) -> None:
    try:
        directive = SCHEMA.parse(text, STEP)
    except DirectiveError as exc:
        assert str(exc)
    else:
        assert directive.action in ("respond", "finish")
        assert directive.message.strip()


def test_free_text_is_capped_per_step_without_touching_the_base_schema() -> None:
    capped = SCHEMA.for_step(["respond", "finish"], max_text_chars=50)
    assert [branch["properties"]["message"]["maxLength"] for branch in capped["oneOf"]] == [50, 50]
    assert STEP["oneOf"][0]["properties"]["message"]["maxLength"] == 2000
    with pytest.raises(DirectiveError):
        SCHEMA.parse(json.dumps({"action": "respond", "message": "x" * 51}), capped)


def test_array_items_share_one_strings_budget() -> None:
    argv = {"type": "object", "properties": {"argv": {"type": "array", "items": {"type": "string"}}}}
    step = SCHEMA.for_step(["call_tool"], max_text_chars=400, tools=[("run_command", argv)])
    capped = step["properties"]["arguments"]["properties"]["argv"]
    assert capped["maxItems"] == 8 and capped["items"]["maxLength"] == 50
