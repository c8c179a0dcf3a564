"""The canonical JSON of cache keys (``assemble_cache._keys``): the same key for the same
input whatever its key order, a different key for a different input, and no key (no
caching) for what JSON cannot say exactly: NaN, ``datetime``, cycles."""

from __future__ import annotations

import datetime
import json
import math
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from assemble_cache._keys import cache_key, canonical

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_a_json_value_reads_back_from_its_key_whatever_its_key_order(value: Any) -> None:
    text = canonical(value)
    assert json.loads(text) == value
    if isinstance(value, dict):
        reordered = dict(reversed(list(value.items())))
        assert canonical(reordered) == text


@given(JSON, JSON)
def test_different_values_get_different_keys(a: Any, b: Any) -> None:
    if json.loads(canonical(a)) != json.loads(canonical(b)):
        assert canonical(a) != canonical(b)


def test_keys_are_sorted_and_compact() -> None:
    assert canonical({"b": 1, "a": [1, 2.5, "é"], "c": {"z": None, "y": True}}) == (
        '{"a":[1,2.5,"é"],"b":1,"c":{"y":true,"z":null}}'
    )
    assert canonical("id-7") == '"id-7"' and canonical(42) == "42"


def test_what_json_cannot_say_exactly_is_not_cached() -> None:
    moment = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for value in (
        {"x": math.nan},  # msgspec alone writes null: the key of {"x": None}
        [math.inf],
        {"at": moment},  # msgspec alone writes the ISO text: the key of that string
        {"id": uuid.UUID(int=1)},
        cyclic,
        {"b": b"bytes"},
    ):
        assert cache_key("t", value, None) is None, value
    assert cache_key("t", {"x": None}, None) is not None
    assert cache_key("t", {"at": moment.isoformat()}, None) is not None


def test_tuples_and_int_keys_are_keyed_as_json_reads_them() -> None:
    assert canonical((1, 2)) == canonical([1, 2]) == "[1,2]"
    assert canonical({2: "b", 1: "a"}) == '{"1":"a","2":"b"}'
