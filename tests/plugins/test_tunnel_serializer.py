"""Runner's serializer tree format in Python, checked against the real ``@bluelibs/runner``.

Two Node runs serve the whole file (module fixtures): one prints what Runner's
``Serializer`` writes for many JS values (and what it makes of Python's text); the other
compares the depth limit at the boundary. Without Node those tests skip (fail on CI).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import pickle
import struct
from typing import Any

import pytest

from assemble_tunnel._serializer import (
    MAX_DEPTH,
    JsRegExp,
    RemoteErrorValue,
    SerializerError,
    decode,
    dumps,
    encode,
    loads,
)

from ._node import node

UTC = dt.UTC


class Color(enum.IntEnum):
    RED = 1


class Mood(enum.StrEnum):
    HAPPY = "happy"


class Plain(enum.Enum):
    A = 1


@dataclasses.dataclass
class Point:
    x: int
    y: list[Any]


# JS expressions: what Runner's stringify writes for each (``s`` is a Serializer).
JS_VALUES = {
    "plain": '({a: 1, b: [true, null, "x"], c: 1.5, u: "héllo ✓"})',
    "date": "new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678))",
    "date_big_year": "new Date(Date.UTC(12345, 0, 1))",
    "date_year_0": 'new Date("0000-01-01T00:00:00.000Z")',
    "date_negative_year": "new Date(Date.UTC(-1, 0, 1))",
    "nonfinite": "[NaN, Infinity, -Infinity]",
    "bigint": "12345678901234567890n",
    "bigint_small": "-5n",
    "map": 'new Map([[1, "a"], ["k", {x: 1}], [[1, 2], "arr"]])',
    "set": "new Set([1])",
    "set_of_sets": 'new Set([new Set(["a"])])',
    "buffer": "Buffer.from([0, 1, 255])",
    "uint8": "new Uint8Array([1, 2])",
    "int16": "new Int16Array([1, -1])",
    "float64": "new Float64Array([1.5])",
    "arraybuffer": "new Uint8Array([7, 8]).buffer",
    "dataview": "new DataView(new Uint8Array([9]).buffer)",
    "bigint64": "new BigInt64Array([1n])",
    "regexp": "/a+b/gi",
    "error": (
        '(() => { const e = new TypeError("boom"); e.code = 42; e.cause = new Error("inner");'
        " return e; })()"
    ),
    "error_no_stack": '(() => { const e = new TypeError("boom"); delete e.stack; return e; })()',
    "undefined": "({a: undefined, b: [undefined]})",
    "url": 'new URL("https://x.org/a?b=1")',
    "search_params": 'new URLSearchParams("a=1&b=2")',
    "marker_keys": (
        '({__type: 1, __graph: 2, "$runner.escape::x": 3,'
        ' nested: {__type: "Date", value: "not a date"}})'
    ),
    "unsafe_keys": 'JSON.parse(\'{"__proto__": 1, "constructor": 2, "prototype": 3, "ok": 4}\')',
    "symbol": 'Symbol.for("x")',
}

# The same values in Python, where they have one, for the exact-wire comparison.
PY_TWINS: dict[str, Any] = {
    "plain": {"a": 1, "b": [True, None, "x"], "c": 1.5, "u": "héllo ✓"},
    "date": dt.datetime(2024, 1, 2, 3, 4, 5, 678999),
    "nonfinite": [math.nan, math.inf, -math.inf],
    "bigint": 12345678901234567890,
    "map": {1: "a", "k": {"x": 1}, (1, 2): "arr"},
    "set": {1},
    "set_of_sets": {frozenset({"a"})},
    "buffer": b"\x00\x01\xff",
    "regexp": JsRegExp("a+b", "gi"),
    "error_no_stack": TypeError("boom"),
    "marker_keys": {
        "__type": 1,
        "__graph": 2,
        "$runner.escape::x": 3,
        "nested": {"__type": "Date", "value": "not a date"},
    },
    "unsafe_keys": {"__proto__": 1, "constructor": 2, "prototype": 3, "ok": 4},
}

# Python values: Node parses their dumps and describes what it got.
PY_VALUES: dict[str, Any] = {
    "date_naive": dt.datetime(2024, 1, 2, 3, 4, 5, 678901),
    "date_offset": dt.datetime(2024, 1, 2, 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "map": {1: "a", (1, 2): "b"},
    "set": {"x"},
    "nonfinite": [math.nan, math.inf, -math.inf],
    "ints": [2**64, 2**53 - 1, -(2**53), -(2**53) + 1],
    "binary": [b"hi", bytearray(b"\x00\xff"), memoryview(b"z")],
    "marker_keys": {"__type": "x", "__graph": 1, "$runner.escape::a": 2},
    "error": KeyError("k"),
    "remote_error": RemoteErrorValue("TypeError", "boom", "stack text", {"code": 42}),
    "regexp": JsRegExp("^a+$", "i"),
    "dataclass": Point(1, [2]),
    "enums": [Color.RED, Mood.HAPPY],
    "tuple": (1, "two"),
    "nested": {"when": [dt.datetime(2000, 1, 1), {"tags": {"a"}}]},
}

DESCRIBE = r"""
function describe(v) {
  if (v === undefined) return {t: "undefined"};
  if (v === null) return null;
  if (typeof v === "bigint") return {t: "bigint", v: v.toString()};
  if (typeof v === "number") return Number.isFinite(v) ? v : {t: "number", v: String(v)};
  if (typeof v !== "object") return v;
  if (v instanceof Date) return {t: "Date", v: v.toISOString()};
  if (v instanceof Map) return {t: "Map", v: [...v].map(([k, x]) => [describe(k), describe(x)])};
  if (v instanceof Set) return {t: "Set", v: [...v].map(describe)};
  if (Buffer.isBuffer(v)) return {t: "Buffer", v: [...v]};
  if (v instanceof RegExp) return {t: "RegExp", v: String(v)};
  if (v instanceof Error) {
    const { name, ...fields } = v;  // Runner sets name as an own property
    return {t: "Error", name: v.name, message: v.message, fields: describe(fields)};
  }
  if (Array.isArray(v)) return v.map(describe);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, describe(x)]));
}
"""


@pytest.fixture(scope="module")
def runner_js() -> dict[str, Any]:
    """What Runner writes for ``JS_VALUES`` and what it reads from Python's ``PY_VALUES``."""
    py_texts = {name: dumps(value) for name, value in PY_VALUES.items()}
    entries = ",\n".join(f"  {json.dumps(k)}: () => {v}" for k, v in JS_VALUES.items())
    script = (
        'const { Serializer } = require("@bluelibs/runner");\n'
        + DESCRIBE
        + f"const s = new Serializer();\nconst JS = {{\n{entries}\n}};\n"
        + f"const PY = {json.dumps(py_texts)};\n"
        + r"""
const out = {written: {}, read: {}, graph: {}};
for (const [name, make] of Object.entries(JS)) out.written[name] = s.stringify(make());
for (const [name, text] of Object.entries(PY)) out.read[name] = describe(s.parse(text));
const g = {a: 1}; g.self = g;
out.graph.shared = s.serialize({m: new Map([[1, g]]), d: new Date(0), arr: [g, g]});
const m = new Map(); m.set("me", m);
out.graph.map_self = s.serialize(m);
const st = new Set(); st.add(st);
out.graph.set_self = s.serialize(st);
const er = new Error("x"); er.self = er;
out.graph.error_self = s.serialize(er);
out.graph.plain = s.serialize({a: [1, 2]});
console.log(JSON.stringify(out));
"""
    )
    done = node(script)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# ------------------------------------------------------------------ Node -> Python


def test_python_reads_what_runner_writes(runner_js: dict[str, Any]) -> None:
    got = {name: loads(text) for name, text in runner_js["written"].items() if name in READ_OK}
    assert got == {name: READ_OK[name] for name in got}
    nan, inf, neg = loads(runner_js["written"]["nonfinite"])
    assert math.isnan(nan) and inf == math.inf and neg == -math.inf


READ_OK: dict[str, Any] = {
    "plain": {"a": 1, "b": [True, None, "x"], "c": 1.5, "u": "héllo ✓"},
    "date": dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    "bigint": 12345678901234567890,
    "bigint_small": -5,
    "map": {1: "a", "k": {"x": 1}, (1, 2): "arr"},
    "set": {1},
    "set_of_sets": {frozenset({"a"})},
    "buffer": b"\x00\x01\xff",
    "uint8": b"\x01\x02",
    "int16": struct.pack("<hh", 1, -1),
    "float64": struct.pack("<d", 1.5),
    "arraybuffer": b"\x07\x08",
    "dataview": b"\x09",
    "bigint64": struct.pack("<q", 1),
    "regexp": JsRegExp("a+b", "gi"),
    "undefined": {"a": None, "b": [None]},
    "url": "https://x.org/a?b=1",
    "search_params": "a=1&b=2",
    "marker_keys": {
        "__type": 1,
        "__graph": 2,
        "$runner.escape::x": 3,
        "nested": {"__type": "Date", "value": "not a date"},
    },
    "unsafe_keys": {"ok": 4},
}


def test_a_runner_error_reads_as_a_remote_error_value(runner_js: dict[str, Any]) -> None:
    err = loads(runner_js["written"]["error"])
    assert isinstance(err, RemoteErrorValue)
    assert (err.name, err.message, str(err), err.fields) == (
        "TypeError",
        "boom",
        "boom",
        {"code": 42},
    )
    assert err.stack is not None and err.stack.startswith("TypeError: boom\n")
    assert isinstance(err.cause, RemoteErrorValue) and err.__cause__ is err.cause
    assert (err.cause.name, err.cause.message) == ("Error", "inner")
    assert repr(err) == "RemoteErrorValue('TypeError', 'boom')"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("date_big_year", "Date '+012345-01-01T00:00:00.000Z' is outside the years"),
        ("date_year_0", "Date '0000-01-01T00:00:00.000Z' is outside the years"),
        ("date_negative_year", "Date '-000001-01-01T00:00:00.000Z' is outside the years"),
        ("symbol", "a JS Symbol cannot be represented in Python"),
    ],
)
def test_what_python_cannot_hold_is_refused(
    runner_js: dict[str, Any], name: str, reason: str
) -> None:
    with pytest.raises(SerializerError, match=r"^value: ") as caught:
        loads(runner_js["written"][name])
    assert caught.value.reason.startswith(reason) and caught.value.path == "value"


def test_python_writes_what_runner_writes(runner_js: dict[str, Any]) -> None:
    for name, value in PY_TWINS.items():
        assert json.loads(dumps(value)) == json.loads(runner_js["written"][name]), name


def test_graph_format_keeps_sharing_and_cycles(runner_js: dict[str, Any]) -> None:
    value = loads(runner_js["graph"]["shared"])
    g = value["arr"][0]
    assert value["arr"][1] is g and g["self"] is g and value["m"][1] is g
    assert value["d"] == dt.datetime(1970, 1, 1, tzinfo=UTC)
    me = loads(runner_js["graph"]["map_self"])
    assert me["me"] is me
    assert loads(runner_js["graph"]["plain"]) == {"a": [1, 2]}


def test_graph_cycles_python_cannot_build_are_refused(runner_js: dict[str, Any]) -> None:
    with pytest.raises(SerializerError, match=r"a cycle through a Set item cannot be represented"):
        loads(runner_js["graph"]["set_self"])
    with pytest.raises(SerializerError, match=r"a cycle through a 'Error' value cannot"):
        loads(runner_js["graph"]["error_self"])


# ------------------------------------------------------------------ Python -> Node


def test_runner_reads_what_python_writes(runner_js: dict[str, Any]) -> None:
    read = runner_js["read"]
    assert read["date_naive"] == {"t": "Date", "v": "2024-01-02T03:04:05.678Z"}
    assert read["date_offset"] == {"t": "Date", "v": "2024-01-02T03:00:00.000Z"}
    assert read["map"] == {"t": "Map", "v": [[1, "a"], [[1, 2], "b"]]}
    assert read["set"] == {"t": "Set", "v": ["x"]}
    assert read["nonfinite"] == [{"t": "number", "v": v} for v in ("NaN", "Infinity", "-Infinity")]
    assert read["ints"] == [
        {"t": "bigint", "v": str(2**64)},
        2**53 - 1,
        {"t": "bigint", "v": str(-(2**53))},
        -(2**53) + 1,
    ]
    assert read["binary"] == [{"t": "Buffer", "v": v} for v in ([104, 105], [0, 255], [122])]
    assert read["marker_keys"] == {"__type": "x", "__graph": 1, "$runner.escape::a": 2}
    assert read["error"] == {"t": "Error", "name": "KeyError", "message": "'k'", "fields": {}}
    assert read["remote_error"] == {
        "t": "Error",
        "name": "TypeError",
        "message": "boom",
        "fields": {"code": 42},
    }
    assert read["regexp"] == {"t": "RegExp", "v": "/^a+$/i"}
    assert read["dataclass"] == {"x": 1, "y": [2]}
    assert read["enums"] == [1, "happy"]
    assert read["tuple"] == [1, "two"]
    assert read["nested"] == {
        "when": [{"t": "Date", "v": "2000-01-01T00:00:00.000Z"}, {"tags": {"t": "Set", "v": ["a"]}}]
    }


def test_errors_travel_without_stack_or_traceback() -> None:
    try:
        raise ValueError("secret path /etc")
    except ValueError as exc:
        wire = encode(exc)
    assert wire == {
        "__type": "Error",
        "value": {"name": "ValueError", "message": "secret path /etc", "customFields": {}},
    }
    remote = RemoteErrorValue("E", "m", "at x.js:1", {"code": 1, "toString": 2, "constructor": 3})
    assert encode(remote)["value"] == {"name": "E", "message": "m", "customFields": {"code": 1}}

    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert encode(Broken())["value"]["message"] == "<unprintable Broken>"


def test_a_remote_error_value_pickles() -> None:
    err = RemoteErrorValue("E", "m", "stack", {"code": 1}, RemoteErrorValue("C", "c"))
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.name, copy.message, copy.stack, copy.fields) == ("E", "m", "stack", {"code": 1})
    assert copy.cause.name == "C" and copy.__cause__ is copy.cause


# ------------------------------------------------------------------ depth parity

# Innermost values, each wrapped in arrays: (JS, Python twin, levels it adds under itself).
# Runner writes BigInt and NonFiniteNumber records without counting a level, reads them
# counting one: their edge for writing is one deeper (READ_ONLY_LEVEL).
INNER: dict[str, tuple[str, Any, int]] = {
    "number": ("1", 1, 0),
    "empty_array": ("[]", [], 0),
    "date": ("new Date(0)", dt.datetime(1970, 1, 1, tzinfo=UTC), 1),
    "bigint": ("2n ** 64n", 2**64, 1),
    "nan": ("NaN", math.nan, 1),
    "set": ("new Set([1])", {1}, 2),
    "empty_set": ("new Set()", set(), 1),
    "map": ("new Map([[1, 2]])", {1: 2}, 3),
    "buffer": ("Buffer.from([1])", b"\x01", 2),
    "empty_buffer": ("Buffer.alloc(0)", b"", 1),
    "regexp": ("/a/g", JsRegExp("a", "g"), 2),
    "error": (
        '(() => { const e = new Error("m"); e.c = 1; return e; })()',
        RemoteErrorValue("Error", "m", fields={"c": 1}),
        3,
    ),
}


def _nested(shape: str, n: int) -> tuple[str, Any]:
    """A JS expression and its Python twin, ``n`` containers deep."""
    py: Any
    if shape == "maps":  # each level is a record, its entries array and a pair
        js, py = "1", 1
        for _ in range(n):
            js, py = f"new Map([[1, {js}]])", {1: py}
        return js, py
    js, py, _ = INNER[shape]
    for _ in range(n):
        py = [py]
    return "[" * n + js + "]" * n, py


READ_ONLY_LEVEL = {"bigint", "nan"}
EDGES = {shape: MAX_DEPTH - extra for shape, (_, _, extra) in INNER.items()}
EDGES["maps"] = MAX_DEPTH // 3
DEPTH_CASES = [(shape, n) for shape, edge in EDGES.items() for n in (edge - 1, edge, edge + 1)]


@pytest.fixture(scope="module")
def runner_depth() -> list[dict[str, Any]]:
    """Runner at ``maxDepth: MAX_DEPTH``: which values it writes, which texts it reads."""
    values = ",\n".join(_nested(shape, n)[0] for shape, n in DEPTH_CASES)
    script = (
        'const { Serializer } = require("@bluelibs/runner");\n'
        f"const s = new Serializer({{maxDepth: {MAX_DEPTH}}});\n"
        "const deep = new Serializer({maxDepth: 10000});\n"
        f"const values = [\n{values}\n];\n"
        + r"""
const out = values.map((v) => {
  const text = deep.stringify(v);
  let writes = true, reads = true;
  try { s.stringify(v); } catch (e) { writes = false; }
  try { s.parse(text); } catch (e) { reads = false; }
  return {text, writes, reads};
});
console.log(JSON.stringify(out));
"""
    )
    done = node(script)
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(("index", "case"), list(enumerate(DEPTH_CASES)))
def test_depth_limit_matches_runner_at_the_same_limit(
    runner_depth: list[dict[str, Any]], index: int, case: tuple[str, int]
) -> None:
    shape, n = case
    seen = runner_depth[index]
    value = _nested(shape, n)[1]
    assert seen["reads"] == (n <= EDGES[shape])
    assert seen["writes"] == (n <= EDGES[shape] + (shape in READ_ONLY_LEVEL))
    assert _succeeds(dumps, value) == seen["writes"]
    assert _succeeds(loads, seen["text"]) == seen["reads"]
    if seen["reads"]:
        if shape != "error":  # Runner's has a stack
            assert json.loads(dumps(value)) == json.loads(seen["text"])
        assert dumps(loads(seen["text"])) == dumps(value)


def _succeeds(function: Any, argument: Any) -> bool:
    """Whether ``function(argument)`` passes; it may only fail for the depth."""
    try:
        function(argument)
    except SerializerError as exc:
        reason = exc.reason
    else:
        return True
    assert reason == f"nested deeper than MAX_DEPTH ({MAX_DEPTH})"
    return False


@pytest.mark.parametrize("shape", sorted(INNER))
def test_typed_values_too_deep_are_refused_both_ways(shape: str) -> None:
    for n in range(EDGES[shape] + 1, MAX_DEPTH + 2):
        value = _nested(shape, n)[1]
        if shape not in READ_ONLY_LEVEL or n > EDGES[shape] + 1:
            assert not _succeeds(dumps, value) and not _succeeds(encode, value)
        tree = json.loads(dumps(_nested(shape, 0)[1]))
        for _ in range(n):
            tree = [tree]
        assert not _succeeds(decode, tree)
        graph = {"__graph": True, "root": tree, "nodes": {}}
        assert not _succeeds(decode, graph)


def test_graph_references_count_towards_the_depth() -> None:
    nodes = {f"n{i}": {"kind": "array", "value": [{"__ref": f"n{i + 1}"}]} for i in range(150)}
    nodes["n150"] = {"kind": "array", "value": []}
    with pytest.raises(SerializerError, match="nested deeper than MAX_DEPTH"):
        decode({"__graph": True, "root": {"__ref": "n0"}, "nodes": nodes})
    nodes = {f"n{i}": {"kind": "array", "value": [{"__ref": f"n{i + 1}"}]} for i in range(50)}
    nodes["n50"] = {"kind": "array", "value": []}
    value = decode({"__graph": True, "root": {"__ref": "n0"}, "nodes": nodes})
    for _ in range(50):
        (value,) = value
    assert value == []


def test_very_deep_input_is_refused_fast_without_recursion_error() -> None:
    with pytest.raises(SerializerError, match=r"^value: nested deeper than MAX_DEPTH"):
        loads("[" * 100_000 + "]" * 100_000)
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SerializerError, match=r"more\)\.\.\..*nested deeper") as caught:
        dumps(deep)
    assert caught.value.path.startswith("value[0][0]") and len(caught.value.path) < 200
    with pytest.raises(SerializerError, match="nested deeper"):
        decode(deep)


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        "s",
        0,
        -1.25,
        2**53 - 1,
        2**53,
        -(2**80),
        math.inf,
        -math.inf,
        [],
        {},
        {"a": [1, {"b": None}]},
        dt.datetime(1, 1, 1, tzinfo=UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        {1: "a", None: "b", 2.5: "c", (1, (2, 3)): "d", frozenset({1}): "e"},
        {1, "a", (1, 2)},
        b"",
        b"\x00\xff",
        JsRegExp("x", "dgimsuy"),
        {"__type": "Date", "value": "x", "__graph": True, "$runner.escape::": 1},
        {"__graph": True, "root": 1},
        [{"__type": 1, "value": 2}, {"__type": "Date"}],
    ],
)
def test_round_trip(value: Any) -> None:
    assert loads(dumps(value)) == value
    assert decode(encode(value)) == value


def test_round_trip_of_nan_and_conversions() -> None:
    assert math.isnan(loads(dumps(math.nan)))
    assert loads(dumps((1, [2, (3,)]))) == [1, [2, [3]]]
    assert loads(dumps(bytearray(b"ab"))) == b"ab"
    assert loads(dumps(Point(1, [Point(2, [])]))) == {"x": 1, "y": [{"x": 2, "y": []}]}
    assert loads(dumps({"k": Color.RED, "m": Mood.HAPPY})) == {"k": 1, "m": "happy"}
    assert type(loads(dumps(Mood.HAPPY))) is str

    class Ratio(float):
        pass

    assert dumps([Ratio(0.5), Ratio("nan")]) == '[0.5,{"__type":"NonFiniteNumber","value":"NaN"}]'
    assert loads(dumps({"__proto__": 1, "constructor": {}, "ok": 2})) == {"ok": 2}
    assert loads(dumps(dt.datetime(2024, 5, 6, 7, 8, 9, 999999))) == dt.datetime(
        2024, 5, 6, 7, 8, 9, 999000, tzinfo=UTC
    )


def test_exact_wire_text() -> None:
    assert dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'
    assert dumps(dt.datetime(5, 1, 2)) == '{"__type":"Date","value":"0005-01-02T00:00:00.000Z"}'
    assert dumps(2**53) == '{"__type":"BigInt","value":"9007199254740992"}'
    assert dumps(float("-inf")) == '{"__type":"NonFiniteNumber","value":"-Infinity"}'
    assert dumps({"$runner.escape::a": 1}) == '{"$runner.escape::$runner.escape::a":1}'
    assert dumps([{1: 2}]) == '[{"__type":"Map","value":[[1,2]]}]'
    assert dumps(memoryview(b"\x01")) == '{"__type":"Buffer","value":[1]}'


def test_plain_json_passes_through_unchanged() -> None:
    value = {"a": [1, 2.5, "x", None, True, {"b": (1, 2)}]}
    assert encode(value) is value
    tree = json.loads(json.dumps(value))
    assert decode(tree) is tree
    assert decode("text") == "text"


def test_loads_reads_bytes_and_other_encodings() -> None:
    assert loads(b'{"a":"\xc3\xa9"}') == {"a": "é"}
    assert loads('["x"]'.encode("utf-16")) == ["x"]


def test_keys_are_unescaped_and_unsafe_ones_dropped() -> None:
    text = json.dumps(
        {
            "$runner.escape::__type": "Date",
            "value": "kept",
            "$runner.escape::$runner.escape::x": 1,
            "$runner.escape::constructor": 2,
            "__proto__": 3,
            "prototype": 4,
            "nested": [{"constructor": 5, "ok": 6}],
        }
    )
    assert loads(text) == {
        "__type": "Date",
        "value": "kept",
        "$runner.escape::x": 1,
        "nested": [{"ok": 6}],
    }


def test_typed_records_read_more_than_runner_writes() -> None:
    assert loads('{"__type":"Date","value":0}') == dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert loads('{"__type":"Date","value":1.5e3}') == dt.datetime(1970, 1, 1, 0, 0, 1, 500000, UTC)
    assert loads('{"__type":"Date","value":"2024-01-02"}') == dt.datetime(2024, 1, 2, tzinfo=UTC)
    eastern = loads('{"__type":"Date","value":"2024-01-02T10:00:00+02:00"}')
    assert eastern == dt.datetime(2024, 1, 2, 8, tzinfo=UTC) and eastern.tzinfo is UTC
    assert loads('{"__type":"BigInt","value":" +7 "}') == 7
    assert loads('{"__type":"Map","value":[[[1,[2]],"a"],[{"__type":"Set","value":[1]},"b"]]}') == {
        (1, (2,)): "a",
        frozenset({1}): "b",
    }
    err = loads('{"__type":"Error","value":{"name":"E","message":"m"}}')
    assert (err.name, err.message, err.stack, err.fields, err.cause) == ("E", "m", None, {}, None)
    fields = '{"code":1,"name":"x","toJSON":2,"$runner.escape::__type":3}'
    err = loads(
        f'{{"__type":"Error","value":{{"name":"E","message":"m","customFields":{fields}}}}}'
    )
    assert err.fields == {"code": 1, "__type": 3}
    nodes_as_list = '{"__graph":true,"root":{"__ref":"0"},"nodes":[{"kind":"array","value":[1]}]}'
    assert loads(nodes_as_list) == [1]
    assert loads('{"__graph":true,"root":[{"__type":"BigInt","value":"1"}],"nodes":{}}') == [1]
    assert loads('{"__graph":true,"root":{"a":{"constructor":1}},"nodes":{}}') == {"a": {}}
    not_graph = {"__graph": True, "root": 1, "nodes": 5}
    assert loads(json.dumps(not_graph)) == not_graph


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, {"x": [object()]}], "value[1].x[0]: cannot serialize a value of type object"),
        ({"f": len}, "value.f: cannot serialize a value of type builtin_function_or_method"),
        ({"a b": Point}, 'value["a b"]: cannot serialize a value of type type'),
        (
            {1: {"d": dt.date(2024, 1, 1)}},
            "value[1].d: cannot serialize a datetime.date: JS has no such",
        ),
        ([dt.timedelta(1)], "value[0]: cannot serialize a datetime.timedelta: JS has no such type"),
        ({"r": JsRegExp("x", "gg")}, "value.r: invalid RegExp flags 'gg' (allowed once each"),
        (JsRegExp("x", "q"), "value: invalid RegExp flags 'q'"),
        (JsRegExp("x", "uv"), "value: invalid RegExp flags 'uv' (u and v exclude each other)"),
        (JsRegExp(1, ""), "value: JsRegExp pattern and flags must be str"),  # type: ignore[arg-type]
        ({2: [object()]}, "value[2][0]: cannot serialize a value of type object"),
        ({(1, object())}, "value[0][1]: cannot serialize a value of type object"),
        (
            RemoteErrorValue("E", "m", fields={"bad": object()}),
            "value.fields.bad: cannot serialize a value of type object",
        ),
        (
            dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "value: datetime 0001-01-01T00:00:00+01:00 is outside the years UTC can hold",
        ),
        (Plain.A, f"value: cannot serialize a value of type {__name__}.Plain"),
    ],
)
def test_what_cannot_be_written(value: Any, message: str) -> None:
    with pytest.raises(SerializerError) as caught:
        dumps(value)
    assert message in str(caught.value)


def test_cycles_cannot_be_written() -> None:
    items: list[Any] = [1]
    items.append({"again": items})
    with pytest.raises(SerializerError, match=r"^input\[1\]\.again: circular structure"):
        dumps(items, root="input")
    mapping: dict[Any, Any] = {}
    mapping[1] = mapping
    with pytest.raises(SerializerError, match=r"^value\[1\]: circular structure"):
        encode(mapping)
    point = Point(1, [])
    point.y.append(point)
    with pytest.raises(SerializerError, match=r"^value\.y\[0\]: circular structure"):
        dumps(point)
    err = RemoteErrorValue("E", "m")
    err.fields["me"] = err
    with pytest.raises(SerializerError, match=r"^value\.fields\.me: circular structure"):
        dumps(err)
    shared = [1]
    assert dumps([shared, shared]) == "[[1],[1]]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "value: invalid JSON (Expecting value: line 1 column 1 (char 0))"),
        ("[1,]", "value: invalid JSON (Expecting value"),
        ("NaN", "value: invalid JSON (NaN is not JSON)"),
        ('{"a": Infinity}', "value: invalid JSON (Infinity is not JSON)"),
        (b"\xff\xfe\xfd", "value: invalid JSON ("),
        ('{"a":[1,{"__type":"Nope","value":1}]}', "value.a[1]: unknown type 'Nope'"),
        ('{"__type":"BigInt","value":"12x"}', "value.value: invalid BigInt payload (a decimal"),
        ('{"__type":"BigInt","value":5}', "value.value: invalid BigInt payload"),
        (
            '{"__type":"BigInt","value":"' + "9" * 5000 + '"}',
            "value.value: invalid BigInt payload (",
        ),
        ('{"__type":"NonFiniteNumber","value":"nan"}', "value.value: invalid NonFiniteNumber"),
        ('{"__type":"Date","value":"garbage"}', "value.value: invalid Date payload 'garbage'"),
        ('{"__type":"Date","value":"2024-13-01T00:00:00.000Z"}', "value.value: invalid Date"),
        ('{"__type":"Date","value":null}', "value.value: invalid Date payload None"),
        ('{"__type":"Date","value":1e300}', "value: Date 1e+300 ms is outside the years"),
        ('{"__type":"Map","value":{}}', "value.value: invalid Map payload (an array of"),
        ('{"__type":"Map","value":[[1]]}', "value.value[0]: invalid Map entry (a [key, value]"),
        (
            '{"__type":"Map","value":[[1,2],[{},2]]}',
            "value.value[1][0]: unhashable Map key of type",
        ),
        ('{"__type":"Map","value":[[[1,{}],2]]}', "value.value[0][0]: unhashable Map key of type"),
        ('{"__type":"Set","value":"ab"}', "value.value: invalid Set payload (an array)"),
        (
            '{"__type":"Set","value":[1,{"a":1}]}',
            "value.value[1]: unhashable Set item of type dict",
        ),
        ('{"__type":"Buffer","value":[256]}', "value.value: invalid Buffer payload (an array of"),
        ('{"__type":"Buffer","value":[-1]}', "value.value: invalid Buffer payload"),
        ('{"__type":"Buffer","value":[true]}', "value.value: invalid Buffer payload"),
        ('{"__type":"Buffer","value":"aGk="}', "value.value: invalid Buffer payload"),
        ('{"__type":"Int16Array","value":[1,2,3]}', "value: invalid Int16Array payload (3 bytes"),
        ('{"__type":"RegExp","value":{"pattern":"a"}}', "value.value: invalid RegExp payload"),
        ('{"__type":"RegExp","value":"a"}', "value.value: invalid RegExp payload"),
        ('{"__type":"RegExp","value":{"pattern":"a","flags":"z"}}', "value.value.flags: invalid"),
        ('{"__type":"Error","value":"boom"}', "value.value: invalid Error payload (an object)"),
        ('{"__type":"Error","value":{"name":1,"message":"m"}}', "value.value: invalid Error"),
        ('{"__type":"Error","value":{"name":"E","message":"m","stack":1}}', "value.value.stack:"),
        (
            '{"__type":"Error","value":{"name":"E","message":"m","customFields":[]}}',
            "value.value.customFields: invalid Error payload (customFields must be an object)",
        ),
        ('{"__type":"URL","value":{}}', "value.value: invalid URL payload (a string)"),
        ('{"__type":"Symbol","value":{"kind":"For","key":"x"}}', "value: a JS Symbol cannot"),
        ('{"x":{"__type":"Nope","value":[{"__type":"Nope2","value":1}]}}', "value.x.value[0]:"),
        (
            '{"__graph":true,"root":{"__ref":"a","x":1},"nodes":{}}',
            "value: invalid object reference",
        ),
        ('{"__graph":true,"root":{"__ref":1},"nodes":{}}', "value: invalid object reference"),
        ('{"__graph":true,"root":[{"__ref":"a"}],"nodes":{}}', "value[0]: unresolved reference id"),
        (
            '{"__graph":true,"root":{"__ref":"__proto__"},"nodes":{"__proto__":{"kind":"array",'
            '"value":[]}}}',
            "value: unresolved reference id '__proto__'",
        ),
        (
            '{"__graph":true,"root":{"__type":"Date","value":[{"__ref":"x"}]},"nodes":{}}',
            "value.value[0]: unresolved reference id 'x'",
        ),
        (
            '{"__graph":true,"root":{"__ref":"a"},"nodes":{"a":{"kind":"type","type":"Date",'
            '"value":{"__ref":"zz"}}}}',
            "value.value: unresolved reference id 'zz'",
        ),
        (
            '{"__graph":true,"root":{"__ref":"a"},"nodes":{"a":{"kind":"array","value":{}}}}',
            "value: invalid array node 'a' (its value must be an array)",
        ),
        (
            '{"__graph":true,"root":{"__ref":"a"},"nodes":{"a":{"kind":"object","value":[]}}}',
            "value: invalid object node 'a' (its value must be an object)",
        ),
        (
            '{"__graph":true,"root":{"__ref":"a"},"nodes":{"a":{"kind":"type","value":1}}}',
            "value: unsupported node kind in node 'a'",
        ),
        ('{"__graph":true,"root":{"__ref":"a"},"nodes":{"a":1}}', "value: unsupported node kind"),
        (
            '{"__graph":true,"root":{"k":{"__ref":"a"}},"nodes":{"a":{"kind":"type","type":"Date",'
            '"value":"x"}}}',
            "value.k.value: invalid Date payload 'x'",
        ),
        (
            '{"__graph":true,"root":{"__ref":"a"},"nodes":{"a":{"kind":"object","value":'
            '{"b":{"__type":"Date","value":{"__ref":"c"}}}},"c":{"kind":"array","value":["x"]}}}',
            "value.b.value: invalid Date payload ['x']",
        ),
        (
            '{"__graph":true,"root":{"__ref":"a"},"nodes":{"a":{"kind":"type","type":"Error",'
            '"value":{"name":"E","message":"m","customFields":{"k":[[{"__ref":"a"}]]}}}}}',
            "value: a cycle through a 'Error' value cannot be represented in Python",
        ),
        (
            '{"__graph":true,"root":{"__ref":"a"},"nodes":{"a":{"kind":"type","type":"Map",'
            '"value":[[[{"__ref":"a"}],1]]}}}',
            "value.value[0][0]: a cycle through a Map key cannot be represented",
        ),
        (
            '{"__graph":true,"root":{"__ref":"a"},"nodes":{"a":{"kind":"type","type":"Set",'
            '"value":[[{"__ref":"a"}]]}}}',
            "value.value[0]: a cycle through a Set item cannot be represented",
        ),
    ],
)
def test_what_cannot_be_read(text: str | bytes, message: str) -> None:
    with pytest.raises(SerializerError) as caught:
        loads(text)
    assert str(caught.value).startswith(message)


def test_error_names_root_path_and_reason() -> None:
    with pytest.raises(SerializerError) as caught:
        loads('{"when":[1,2,{"__type":"Date","value":"x"}]}', root="input")
    assert str(caught.value) == (
        "input.when[2].value: invalid Date payload 'x' (JS would make an Invalid Date)"
    )
    assert (caught.value.path, isinstance(caught.value, ValueError)) == (
        "input.when[2].value",
        True,
    )
    with pytest.raises(SerializerError, match=r"^result\[0\]: unknown type 'X'$"):
        decode([{"__type": "X", "value": None}], root="result")


def test_json_integers_past_2_53_read_as_js_reads_them() -> None:
    """A Node number past 2**53 - 1 is a double: it reads as a float, so it goes back to
    Node as a number (an int would go back as a BigInt, which JS cannot add to a number)."""
    got = loads(
        '{"safe": 9007199254740991, "past": 9007199254740992, "big": 1e20, "n": 1' + "0" * 20 + "}"
    )
    assert got == {"safe": 9007199254740991, "past": 9007199254740992.0, "big": 1e20, "n": 1e20}
    assert type(got["safe"]) is int and type(got["past"]) is float and type(got["n"]) is float
    assert dumps(got["past"]) == "9007199254740992.0"
    assert loads('{"card": "4242424242424242"}') == {"card": "4242424242424242"}  # strings stay
