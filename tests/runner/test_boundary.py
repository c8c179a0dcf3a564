"""The boundary rule: what no value from outside may hold, each problem named by its field."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import runner
from runner._boundary import MAX_FIELD_ERRORS
from runner.errors import ValidationError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None)),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(codec=None), max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def fields(value: Any) -> dict[str, str]:
    return {e.field: e.message for e in runner.boundary_errors(value)}


def test_plain_json_passes() -> None:
    value = {"name": "Ada Lovelace ✓ 😀", "n": [1, 2.5, -(2**63), 2**63 - 1], "ok": True}
    runner.check_boundary(value)
    assert fields(value) == {}


@pytest.mark.parametrize(
    ("value", "field", "says"),
    [
        ({"name": "a\ud800b"}, "name", "lone surrogate (U+D800)"),
        ({"name": "\udfff"}, "name", "lone surrogate (U+DFFF)"),
        ({"email": "a\x00@b.c"}, "email", "NUL character (U+0000)"),
        ({"email": "é\x00"}, "email", "NUL character"),
        ({"amount": math.nan}, "amount", "not a finite number"),
        ({"amount": math.inf}, "amount", "not a finite number"),
        ({"amount": -math.inf}, "amount", "not a finite number"),
        ({"id": 2**63}, "id", "outside the 64-bit range"),
        ({"id": -(2**63) - 1}, "id", "outside the 64-bit range"),
        ({"items": [{"tags": ["ok", "\x00"]}]}, "items[0].tags[1]", "NUL"),
        ("\ud800", "(root)", "lone surrogate"),
    ],
)
def test_each_problem_names_its_field(value: Any, field: str, says: str) -> None:
    found = fields(value)
    assert list(found) == [field]
    assert says in found[field]
    with pytest.raises(ValidationError) as info:
        runner.check_boundary(value, owner="register")
    assert info.value.http_status == 422
    assert info.value.owner == "register"


def test_keys_are_text_too_and_are_shown_escaped() -> None:
    found = fields({"a\ud800": 1, "b\x00": 2})
    assert found == {
        "a\\ud800": "(the key) holds a lone surrogate (U+D800), which is not text and cannot "
        "be stored",
        "b\\x00": "(the key) holds a NUL character (U+0000), which cannot be stored",
    }


def test_subclasses_of_plain_types_are_checked_as_their_value() -> None:
    class Color(StrEnum):
        BAD = "x\x00"

    assert list(fields({"c": Color.BAD})) == ["c"]
    assert fields({"flag": True, "tuple": (1, "\x00")}) == {
        "tuple[1]": "holds a NUL character (U+0000), which cannot be stored"
    }


def test_problems_are_bounded_and_the_walk_does_not_recurse() -> None:
    assert len(runner.boundary_errors(["\x00"] * 10_000)) == MAX_FIELD_ERRORS
    deep: Any = "\x00"
    for _ in range(100_000):
        deep = [deep]
    assert len(runner.boundary_errors(deep)) == 1


@given(json_values)
def test_a_value_passes_exactly_when_it_can_be_stored_and_sent_as_json(value: Any) -> None:
    import json

    problems = runner.boundary_errors(value)
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
        storable = "\\u0000" not in text and all(-(2**63) <= n <= 2**63 - 1 for n in _ints(value))
    except (ValueError, UnicodeEncodeError):
        storable = False
    assert (problems == []) == storable


def _ints(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _ints(v)]
    if isinstance(value, list):
        return [n for v in value for n in _ints(v)]
    return []
