"""Property tests of canonical JSON and the action hash: the same action always hashes the same
(whatever the key order, whether it came as JSON or as a protobuf Struct), and any change to the
tool, the arguments, the working directory or the policy version changes the hash."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.common.errors import InvalidArgument
from services.common.protos import from_struct, to_struct
from services.tools.canonical import action_of, canonical_json, canonical_value

# Valid Unicode text only: protobuf strings cannot carry lone surrogates.
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
# Numbers a Struct can carry exactly: ints up to 2**53 and finite floats.
NUMBERS = st.integers(min_value=-(2**53), max_value=2**53) | st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
ARGUMENTS = st.dictionaries(TEXT, JSON, max_size=5)


def same_json(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: true is not 1, 1.0 is 1, key order does not matter."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [shuffled(item, rng) for item in value]
    return value


def as_struct_numbers(value: Any) -> Any:
    """What a Struct does to a value: every number becomes a float."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {key: as_struct_numbers(item) for key, item in value.items()}
    return [as_struct_numbers(item) for item in value]


def digest(arguments: dict[str, Any], tool: str = "write_file", cwd: str = "/w", policy: str = "p1") -> str:
    return action_of(tool, arguments, cwd, policy).hash


@given(ARGUMENTS, st.randoms(use_true_random=False))
def test_same_action_hashes_the_same_in_any_key_order(arguments: dict[str, Any], rng: random.Random) -> None:
    assert digest(arguments) == digest(shuffled(arguments, rng))
    assert digest(arguments) == digest(json.loads(json.dumps(arguments)))


@given(ARGUMENTS)
def test_struct_and_json_give_the_same_hash(arguments: dict[str, Any]) -> None:
    # Floats beyond 2**53 are not exact in a Struct; ints up to 2**53 are.
    assert digest(arguments) == digest(as_struct_numbers(arguments))


@given(st.dictionaries(TEXT, st.integers(-(2**53), 2**53) | TEXT | st.booleans(), max_size=5))
def test_struct_round_trip_keeps_the_hash(arguments: dict[str, Any]) -> None:
    assert digest(arguments) == digest(from_struct(to_struct(arguments)))


@given(ARGUMENTS, ARGUMENTS)
def test_different_arguments_hash_differently(a: dict[str, Any], b: dict[str, Any]) -> None:
    assume(not same_json(canonical_value(a), canonical_value(b)))
    assert digest(a) != digest(b)


@given(ARGUMENTS, st.data())
def test_changing_one_string_by_one_character_changes_the_hash(
    arguments: dict[str, Any], data: st.DataObject
) -> None:
    key = data.draw(TEXT)
    text = data.draw(TEXT)
    position = data.draw(st.integers(0, len(text)))
    extra = data.draw(st.characters(codec="utf-8"))
    before = {**arguments, key: text}
    after = {**arguments, key: text[:position] + extra + text[position:]}
    assert digest(before) != digest(after)


@given(ARGUMENTS, TEXT, TEXT, TEXT)
def test_tool_directory_and_policy_are_part_of_the_identity(
    arguments: dict[str, Any], tool: str, cwd: str, policy: str
) -> None:
    base = digest(arguments, "write_file", "/w", "p1")
    assert (digest(arguments, tool, "/w", "p1") == base) == (tool == "write_file")
    assert (digest(arguments, "write_file", cwd, "p1") == base) == (cwd == "/w")
    assert (digest(arguments, "write_file", "/w", policy) == base) == (policy == "p1")


@given(ARGUMENTS)
def test_canonical_json_is_compact_sorted_and_round_trips(arguments: dict[str, Any]) -> None:
    text = canonical_json(arguments)
    assert same_json(json.loads(text), canonical_value(arguments))
    assert canonical_json(json.loads(text)) == text


def test_canonical_form_details() -> None:
    assert (
        canonical_json({"b": 1.0, "a": [True, 1, None, 2.5], "é": "ü"})
        == '{"a":[true,1,null,2.5],"b":1,"é":"ü"}'
    )
    assert digest({"flag": True}) != digest({"flag": 1})
    assert digest({"n": 0}) == digest({"n": -0.0})
    assert digest({"path": "e\u0301"}) != digest({"path": "\u00e9"})  # no Unicode normalisation


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_numbers_json_cannot_carry_are_refused(bad: float) -> None:
    with pytest.raises(InvalidArgument):
        action_of("read_file", {"offset": bad}, "/w", "p1")


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        action_of("read_file", {"path": "\udcff"}, "/w", "p1")
