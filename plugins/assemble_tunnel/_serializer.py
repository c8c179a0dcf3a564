"""BlueLibs Runner 5.5's serializer *tree format*, in Python: what the HTTP tunnel carries.

Runner's ``Serializer.stringify`` writes plain JSON where a value is JSON and a typed
record ``{"__type": "<id>", "value": <payload>}`` where it is not; ``Serializer.parse``
reads that (and the *graph format*, ``{"__graph": true, "version": 1, "root": ...,
"nodes": {...}}`` with ``{"__ref": id}`` links, which ``Serializer.serialize`` writes).
:func:`dumps`/:func:`loads` are the text forms, :func:`encode`/:func:`decode` work on
the JSON tree (what :func:`json.dumps` writes / :func:`json.loads` returned).

Mapping (Python -> wire -> Python):

========================================  ==============================================
Python                                    wire
========================================  ==============================================
``None``, ``bool``, ``str``, ``float``    JSON; ``nan``/``inf``/``-inf`` as
                                          ``NonFiniteNumber`` (``"NaN"``, ``"Infinity"``,
                                          ``"-Infinity"``)
``int``                                   JSON number while ``abs <= 2**53 - 1`` (what a JS
                                          number holds exactly), else ``BigInt`` (decimal
                                          string); ``BigInt`` reads back as ``int``
``dict`` with only ``str`` keys           JSON object (see *keys* below)
``dict`` with any other key               ``Map`` (``[[key, value], ...]``); a ``Map``
                                          reads back as ``dict``, list keys as tuples,
                                          set keys as frozensets, dict keys refused
``list``, ``tuple``                       array; an array reads back as ``list``
``set``, ``frozenset``                    ``Set``; reads back as ``set`` (unhashable
                                          items refused)
``bytes``, ``bytearray``, ``memoryview``  ``Buffer`` (array of byte values); ``Buffer``,
                                          ``ArrayBuffer``, ``DataView``, ``Uint8Array`` and
                                          the other typed arrays read back as ``bytes``
                                          (their raw little-endian bytes: use
                                          ``memoryview(b).cast("h")`` for an
                                          ``Int16Array``)
``datetime.datetime``                     ``Date``, exactly ``toISOString()``'s
                                          ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (naive is
                                          taken as UTC, microseconds are truncated to
                                          milliseconds); reads back as an aware UTC
                                          datetime. Years JS writes that ``datetime``
                                          cannot hold (``0000``, ``+012345``,
                                          ``-000001``) and unparsable dates (JS would make
                                          an *Invalid Date*) are refused
:class:`JsRegExp`                         ``RegExp`` (never compiled in Python; flags are
                                          checked like Runner does)
``BaseException``                         ``Error`` ``{"name": type name, "message":
                                          str(exc), "customFields": {}}``: never a stack
                                          or a traceback. An ``Error`` reads back as
                                          :class:`RemoteErrorValue` (name, message, stack,
                                          custom fields, cause); encoding one again sends
                                          its name, message and fields, not its stack
dataclass instance                        JSON object of its fields (one way: reads back
                                          as ``dict``)
``str``/``int``/``float`` subclasses      their plain value (``IntEnum``, ``StrEnum``)
========================================  ==============================================

``Undefined`` reads as ``None`` (Python never writes it); ``URL`` and
``URLSearchParams`` read as their ``str``. ``Symbol`` is refused: Python has no symbols.
Any other type (and any unknown ``__type``) raises :class:`SerializerError`.

Keys: as Runner does, ``__type``, ``__graph`` and keys starting with
``$runner.escape::`` are written with the ``$runner.escape::`` prefix, which reading
removes. The keys ``__proto__``, ``constructor`` and ``prototype`` are dropped both ways,
as Runner drops them: Python has no prototype to pollute, but then a Python end sees
exactly what a Node end would see from the same bytes.

Limits: values nested deeper than :data:`MAX_DEPTH` (Runner's way of counting: the root
is depth 0, each array, object or typed payload adds one; as in Runner, writing a
``BigInt`` or ``NonFiniteNumber`` adds none, reading one does) are refused both ways, never
with ``RecursionError``; Runner's own default is 1000, which a Python stack cannot walk
safely. Writing a cycle is refused ("circular structure"); the graph format can *read*
cycles through arrays, objects and maps, anything else is refused. ``dumps`` always
writes the tree format.

Errors are :class:`SerializerError`, naming the place (``value.when[2]``: written
``root`` argument, then keys and indexes) and what is wrong. Encoding paths follow the
Python value; decoding paths follow the JSON text (through a typed record's ``.value``).

The common case, plain JSON, is checked in one pass and passed to :mod:`json` as is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from typing import Any, NoReturn

__all__ = [
    "MAX_DEPTH",
    "JsRegExp",
    "RemoteErrorValue",
    "SerializerError",
    "decode",
    "dumps",
    "encode",
    "loads",
]

MAX_DEPTH = 200
#: The most values a graph-format payload may stand for once its shared references are
#: written out as a tree (what any later walk of the value visits): a small graph of
#: nodes that each reference the next twice would otherwise stand for 2**n values.
MAX_EXPANDED = 1_000_000
#: JS numbers hold integers exactly up to this; a longer JSON integer is a JS double.
MAX_SAFE_INTEGER = 2**53 - 1
"""The deepest a value may sit (the root is depth 0); deeper is refused both ways."""

_ESC = "$runner.escape::"
_MARKERS = frozenset({"__type", "__graph"})
_UNSAFE = frozenset({"__proto__", "constructor", "prototype"})
_RESERVED = _MARKERS | _UNSAFE  # keys the fast paths leave to the full walk
_SAFE_INT = 2**53 - 1
_UTC = dt.UTC
_TOO_DEEP = f"nested deeper than MAX_DEPTH ({MAX_DEPTH})"
_REGEXP_FLAGS = frozenset("dgimsuvy")
_ERROR_BLOCKED = _UNSAFE | {
    "name",
    "message",
    "stack",
    "cause",
    "toString",
    "toLocaleString",
    "valueOf",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
    "toJSON",
}
_BYTES_PER_ELEMENT = {
    "Buffer": 1,
    "ArrayBuffer": 1,
    "DataView": 1,
    "Int8Array": 1,
    "Uint8Array": 1,
    "Uint8ClampedArray": 1,
    "Int16Array": 2,
    "Uint16Array": 2,
    "Int32Array": 4,
    "Uint32Array": 4,
    "Float32Array": 4,
    "Float64Array": 8,
    "BigInt64Array": 8,
    "BigUint64Array": 8,
}
_ISO = re.compile(r"([+-]\d{6}|\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z")
_BIGINT = re.compile(r"[+-]?\d+")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _reject_constant(name: str) -> NoReturn:
    """JS's ``JSON.parse`` takes no ``NaN`` or ``Infinity``: neither does :func:`loads`."""
    raise ValueError(f"{name} is not JSON")


def _js_int(text: str) -> int | float:
    """A JSON integer as JS's ``JSON.parse`` reads it: past 2**53 - 1 it is a double
    (so it goes back as a number, not as a ``BigInt``); past the largest double (309
    digits) it is ±Infinity, which the boundary rule then refuses as not finite."""
    infinity = -math.inf if text.startswith("-") else math.inf
    try:
        value = int(text)
    except ValueError:  # more digits than int() reads (4300)
        return infinity
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    try:
        return float(value)
    except OverflowError:
        return infinity


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_JS_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_js_int)
_LONG_INT = re.compile(r"\d{16,}")  # 2**53 has 16 digits: shorter runs are exact ints
_SURROGATE = re.compile("[\ud800-\udfff]")


class SerializerError(ValueError):
    """A value that cannot be written or read; ``path`` names where, ``reason`` what."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class JsRegExp:
    """A JavaScript ``RegExp`` carried as data (``source`` and ``flags``); never compiled."""

    pattern: str
    flags: str = ""


class RemoteErrorValue(Exception):
    """A JavaScript ``Error`` found inside data (not a failed call: a value).

    ``fields`` are its custom fields (``err.code = 42`` gives ``{"code": 42}``), without
    the names Runner blocks; ``stack`` is the remote stack text when it was sent;
    ``cause`` its decoded ``cause`` (also set as ``__cause__`` when it is an error).
    """

    def __init__(
        self,
        name: str,
        message: str,
        stack: str | None = None,
        fields: dict[str, Any] | None = None,
        cause: Any = None,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.stack = stack
        self.fields: dict[str, Any] = dict(fields or {})
        self.cause = cause
        if isinstance(cause, BaseException):
            self.__cause__ = cause

    def __repr__(self) -> str:
        return f"RemoteErrorValue({self.name!r}, {self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.message, self.stack, self.fields, self.cause))


class _Fail(Exception):
    """Internal: a failure deep in a walk; each level adds its path segment on the way out."""

    def __init__(self, reason: str, *segments: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments = list(segments)  # innermost first

    def error(self, root: str) -> SerializerError:
        segments = self.segments[::-1]
        if len(segments) > 16:  # a too-deep path: its start and its end say enough
            segments[8:-4] = [f"...({len(segments) - 12} more)..."]
        return SerializerError(root + "".join(segments), self.reason)


def _key(key: Any) -> str:
    if type(key) is str and _IDENT.fullmatch(key):
        return f".{key}"
    if isinstance(key, str):
        return f"[{json.dumps(key, ensure_ascii=False)}]"
    return f"[{key!r}]"


def _kind(value: Any) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


# --------------------------------------------------------------------------- writing


def dump_bytes(value: Any, *, root: str = "value") -> bytes:
    """:func:`dumps` as UTF-8 bytes for the wire; a lone surrogate in a string (which
    UTF-8 cannot hold) is written as its ``\\uXXXX`` escape, as ``JSON.stringify`` does."""
    text = dumps(value, root=root)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text).encode()


def dumps(value: Any, *, root: str = "value") -> str:
    """``value`` as tree-format JSON text (compact, like ``JSON.stringify``)."""
    tree = encode(value, root=root)
    try:
        return _ENCODER.encode(tree)
    except RecursionError:  # pragma: no cover - encode bounds the depth far below the limit
        raise SerializerError(root, _TOO_DEEP) from None


def encode(value: Any, *, root: str = "value") -> Any:
    """``value`` as the JSON tree :func:`dumps` writes (plain JSON comes back as is)."""
    t = type(value)
    if (t is dict or t is list) and _plain_out(value, 0):
        return value
    try:
        return _enc(value, 0, set())
    except _Fail as fail:
        raise fail.error(root) from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps the walk well inside
        raise SerializerError(root, _TOO_DEEP) from None


def _plain_out(x: Any, depth: int) -> bool:
    """Whether container ``x`` is plain JSON that Runner writes unchanged."""
    if depth >= MAX_DEPTH and x:
        return False
    if type(x) is dict:
        for k in x:
            if type(k) is not str or k in _RESERVED or k.startswith(_ESC):
                return False
        items = x.values()
    else:
        items = x
    for v in items:
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if -_SAFE_INT <= v <= _SAFE_INT:
                continue
            return False
        if t is float:
            if v - v == 0.0:  # finite
                continue
            return False
        if (t is dict or t is list or t is tuple) and _plain_out(v, depth + 1):
            continue
        return False
    return True


def _enc(x: Any, depth: int, active: set[int]) -> Any:
    if depth > MAX_DEPTH:
        raise _Fail(_TOO_DEEP)
    if x is None or x is True or x is False:
        return x
    t = type(x)
    if t is str:
        return x
    # Runner writes these two records without counting their payload as a level.
    if t is int:
        return x if -_SAFE_INT <= x <= _SAFE_INT else {"__type": "BigInt", "value": str(x)}
    if t is float:
        return x if x - x == 0.0 else {"__type": "NonFiniteNumber", "value": _nonfinite_tag(x)}
    if t is dict or t is list or t is tuple or t is set or t is frozenset:
        marker = id(x)
        if marker in active:
            raise _Fail("circular structure (the value contains itself)")
        active.add(marker)
        try:
            if t is list or t is tuple:
                return _enc_items(x, depth, active)
            if t is dict:
                return _enc_dict(x, depth, active)
            return {"__type": "Set", "value": _enc_items(x, depth + 1, active)}
        finally:
            active.discard(marker)
    return _enc_other(x, depth, active)


def _enc_items(items: Any, depth: int, active: set[int]) -> list[Any]:
    """``items`` as an array that sits at ``depth``."""
    if depth > MAX_DEPTH:
        raise _Fail(_TOO_DEEP)
    out = []
    index = 0
    try:
        for index, item in enumerate(items):  # noqa: B007 - index names the failing item
            out.append(_enc(item, depth + 1, active))
    except _Fail as fail:
        fail.segments.append(f"[{index}]")
        raise
    return out


def _enc_dict(x: dict[Any, Any], depth: int, active: set[int]) -> Any:
    if all(type(k) is str for k in x):
        return _enc_object(x, depth, active)
    if depth + 1 > MAX_DEPTH or (x and depth + 2 > MAX_DEPTH):
        raise _Fail(_TOO_DEEP)
    entries: list[Any] = []
    key: Any = None
    try:
        for key, item in x.items():
            entries.append([_enc(key, depth + 3, active), _enc(item, depth + 3, active)])
    except _Fail as fail:
        fail.segments.append(_key(key))
        raise
    return {"__type": "Map", "value": entries}


def _enc_object(x: Any, depth: int, active: set[int]) -> dict[str, Any]:
    """``x``: a mapping with str keys (a dict, or a dataclass's fields)."""
    out = {}
    key = ""
    try:
        for key, item in x.items():
            if key in _RESERVED or key.startswith(_ESC):
                if key in _UNSAFE:
                    continue
                out[_ESC + key] = _enc(item, depth + 1, active)
            else:
                out[key] = _enc(item, depth + 1, active)
    except _Fail as fail:
        fail.segments.append(_key(key))
        raise
    return out


def _typed(type_id: str, payload: Any, depth: int) -> dict[str, Any]:
    if depth + 1 > MAX_DEPTH:
        raise _Fail(_TOO_DEEP)
    return {"__type": type_id, "value": payload}


def _nonfinite_tag(x: float) -> str:
    if x != x:
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def _enc_other(x: Any, depth: int, active: set[int]) -> Any:
    if isinstance(x, dt.datetime):
        return _typed("Date", _iso(x), depth)
    if isinstance(x, bytes | bytearray | memoryview):
        if depth + 2 > MAX_DEPTH and len(x):
            raise _Fail(_TOO_DEEP)
        return _typed("Buffer", list(bytes(x)), depth)
    if isinstance(x, JsRegExp):
        if type(x.pattern) is not str or type(x.flags) is not str:
            raise _Fail("JsRegExp pattern and flags must be str")
        _check_flags(x.flags)
        if depth + 2 > MAX_DEPTH:
            raise _Fail(_TOO_DEEP)
        return {"__type": "RegExp", "value": {"pattern": x.pattern, "flags": x.flags}}
    if isinstance(x, BaseException):
        return _enc_error(x, depth, active)
    if isinstance(x, str):
        return str.__str__(x)
    if isinstance(x, int):
        return _enc(int(x), depth, active)
    if isinstance(x, float):
        return _enc(float(x), depth, active)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        marker = id(x)
        if marker in active:
            raise _Fail("circular structure (the value contains itself)")
        active.add(marker)
        try:
            fields = {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}
            return _enc_object(fields, depth, active)
        finally:
            active.discard(marker)
    if isinstance(x, dt.date | dt.time | dt.timedelta):
        hint = "convert it to a datetime, number or str"
        raise _Fail(f"cannot serialize a {_kind(x)}: JS has no such type ({hint})")
    raise _Fail(f"cannot serialize a value of type {_kind(x)}")


def _iso(x: dt.datetime) -> str:
    if x.tzinfo is None:
        utc = x
    else:
        try:
            utc = x.astimezone(_UTC)
        except OverflowError:
            raise _Fail(f"datetime {x.isoformat()} is outside the years UTC can hold") from None
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def _enc_error(x: BaseException, depth: int, active: set[int]) -> dict[str, Any]:
    if depth + 2 > MAX_DEPTH:
        raise _Fail(_TOO_DEEP)
    if isinstance(x, RemoteErrorValue):
        name, message = x.name, x.message
        marker = id(x)
        if marker in active:
            raise _Fail("circular structure (the value contains itself)")
        active.add(marker)
        try:
            fields = {k: v for k, v in x.fields.items() if k not in _ERROR_BLOCKED}
            custom = _enc_object(fields, depth + 2, active)
        except _Fail as fail:
            fail.segments.append(".fields")
            raise
        finally:
            active.discard(marker)
    else:
        name, custom = type(x).__name__, {}
        try:
            message = str(x)
        except Exception:  # a broken __str__ must not break the reply that carries it
            message = f"<unprintable {name}>"
    payload = {"name": name, "message": message, "customFields": custom}
    return {"__type": "Error", "value": payload}


def _check_flags(flags: str) -> None:
    if len(set(flags)) != len(flags) or not _REGEXP_FLAGS.issuperset(flags):
        raise _Fail(f"invalid RegExp flags {flags!r} (allowed once each: dgimsuvy)")
    if "u" in flags and "v" in flags:  # JS's RegExp constructor refuses the pair
        raise _Fail(f"invalid RegExp flags {flags!r} (u and v exclude each other)")


# --------------------------------------------------------------------------- reading


def loads(text: str | bytes, *, root: str = "value", cycles: bool = True) -> Any:
    """Tree-format (or graph-format) JSON text (UTF-8/16/32 when bytes) as a Python value.

    JSON integers past 2**53 - 1 read as ``float``, as JS reads them (an exact big
    integer travels as a ``BigInt`` record). ``cycles=False`` refuses a graph that
    contains itself: what a stranger sends (a task's input, an event's payload) must be
    a tree, or every later walk of it (the boundary check, a schema, the task) never
    ends."""
    try:
        if not isinstance(text, str):
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        tree = (_JS_DECODER if _LONG_INT.search(text) else _DECODER).decode(text)
    except RecursionError:
        raise SerializerError(root, _TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise SerializerError(root, f"invalid JSON ({exc})") from None
    if _plain_text(text):
        return tree
    return decode(tree, root=root, cycles=cycles)


_TEXT_MARKERS = ("\\u", "__type", "__graph", "$runner", "__proto__", "constructor", "prototype")


def _plain_text(text: str) -> bool:
    """Whether ``text`` surely parses to plain JSON, judged on the text alone (C speed).

    No container nests deeper than the count of ``[`` and ``{``; a key can only be a
    marker, an escape or an unsafe name if the text spells it out, or hides a letter of
    it behind a ``\\u`` escape (JSON's other escapes make no letters).
    """
    if text.count("[") + text.count("{") > MAX_DEPTH:
        return False
    return not any(marker in text for marker in _TEXT_MARKERS)


def decode(tree: Any, *, root: str = "value", cycles: bool = True) -> Any:
    """A parsed JSON tree (what ``json.loads`` returned) as a Python value (``cycles``:
    as for :func:`loads`)."""
    t = type(tree)
    if t is not dict and t is not list:
        return tree
    try:
        if t is dict and tree.get("__graph") is True and "root" in tree:
            nodes = tree.get("nodes")
            if type(nodes) is list:
                nodes = {str(i): node for i, node in enumerate(nodes)}
            if type(nodes) is dict:
                return _Graph(nodes, cycles).value(tree["root"], 0)
        if _plain_in(tree, 0):
            return tree
        return _dec(tree, 0)
    except _Fail as fail:
        raise fail.error(root) from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps the walk well inside
        raise SerializerError(root, _TOO_DEEP) from None


def _plain_in(x: Any, depth: int) -> bool:
    """Whether parsed container ``x`` reads back as itself (no records, escapes, drops)."""
    if depth >= MAX_DEPTH and x:
        return False
    if type(x) is dict:
        for k in x:
            if k in _RESERVED or k.startswith(_ESC):
                return False
        items = x.values()
    else:
        items = x
    for v in items:
        t = type(v)
        if (t is dict or t is list) and not _plain_in(v, depth + 1):
            return False
    return True


def _dec(x: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _Fail(_TOO_DEEP)
    t = type(x)
    if t is list:
        out = []
        index = 0
        try:
            for index, item in enumerate(x):  # noqa: B007 - index names the failing item
                out.append(_dec(item, depth + 1))
        except _Fail as fail:
            fail.segments.append(f"[{index}]")
            raise
        return out
    if t is not dict:
        return x
    if type(x.get("__type")) is str and "value" in x:
        try:
            data = _dec(x["value"], depth + 1)
        except _Fail as fail:
            fail.segments.append(".value")
            raise
        return _builtin(x["__type"], data, None)
    obj = {}
    raw = ""
    try:
        for raw, item in x.items():
            key = raw[len(_ESC) :] if raw.startswith(_ESC) else raw
            if key not in _UNSAFE:
                obj[key] = _dec(item, depth + 1)
    except _Fail as fail:
        fail.segments.append(_key(raw))
        raise
    return obj


def _fail_at(reason: str, *segments: str) -> NoReturn:
    raise _Fail(reason, *segments)


def _builtin(type_id: str, data: Any, into: Any) -> Any:
    """The value typed record ``type_id`` with decoded payload ``data`` stands for.

    ``into``: the graph reader's placeholder for a Map (a dict) or Set (a set) to fill.
    """
    if type_id == "Date":
        return _date(data)
    if type_id == "Map":
        return _map(data, {} if into is None else into)
    if type_id == "Set":
        return _set(data, set() if into is None else into)
    if type_id in _BYTES_PER_ELEMENT:
        return _bytes(type_id, data)
    if type_id == "Undefined":
        return None
    if type_id == "BigInt":
        if type(data) is str and _BIGINT.fullmatch(data.strip()):
            try:
                return int(data)
            except ValueError as exc:  # more digits than int() takes from a str
                _fail_at(f"invalid BigInt payload ({exc})", ".value")
        _fail_at("invalid BigInt payload (a decimal integer string)", ".value")
    if type_id == "NonFiniteNumber":
        if data in ("NaN", "Infinity", "-Infinity") and type(data) is str:
            return float(data.lower().replace("infinity", "inf"))
        _fail_at(f"invalid NonFiniteNumber payload {data!r}", ".value")
    if type_id == "Error":
        return _error(data)
    if type_id == "RegExp":
        if (
            type(data) is not dict
            or type(data.get("pattern")) is not str
            or type(data.get("flags")) is not str
        ):
            _fail_at("invalid RegExp payload (pattern and flags strings)", ".value")
        try:
            _check_flags(data["flags"])
        except _Fail as fail:
            fail.segments.append(".value.flags")
            raise
        return JsRegExp(data["pattern"], data["flags"])
    if type_id in ("URL", "URLSearchParams"):
        if type(data) is not str:
            _fail_at(f"invalid {type_id} payload (a string)", ".value")
        return data
    if type_id == "Symbol":
        _fail_at("a JS Symbol cannot be represented in Python")
    _fail_at(f"unknown type {type_id!r}")


def _date(data: Any) -> dt.datetime:
    if type(data) is str:
        match = _ISO.fullmatch(data)
        if match:
            year = int(match[1])
            if not dt.MINYEAR <= year <= dt.MAXYEAR:
                _fail_at(f"Date {data!r} is outside the years Python's datetime holds (1-9999)")
            try:
                return dt.datetime(
                    year,
                    int(match[2]),
                    int(match[3]),
                    int(match[4]),
                    int(match[5]),
                    int(match[6]),
                    int(match[7]) * 1000,
                    tzinfo=_UTC,
                )
            except ValueError:
                pass
        else:
            try:
                parsed = dt.datetime.fromisoformat(data)
                return (
                    parsed.replace(tzinfo=_UTC)
                    if parsed.tzinfo is None
                    else parsed.astimezone(_UTC)
                )
            except (ValueError, OverflowError):
                pass
    elif (type(data) is int or type(data) is float) and math.isfinite(data):
        try:  # JS ``new Date(ms)``: milliseconds since the epoch
            return dt.datetime(1970, 1, 1, tzinfo=_UTC) + dt.timedelta(milliseconds=data)
        except OverflowError:
            _fail_at(f"Date {data!r} ms is outside the years Python's datetime holds (1-9999)")
    _fail_at(f"invalid Date payload {data!r} (JS would make an Invalid Date)", ".value")


def _freeze(item: Any, what: str, segments: tuple[str, ...], into: Any) -> Any:
    """``item`` made hashable (lists as tuples, sets as frozensets), or refused."""
    if item is into:
        _fail_at(f"a cycle through a {what} cannot be represented in Python", *segments)
    t = type(item)
    if t is list:
        return tuple(_freeze(i, what, segments, into) for i in item)
    if t is set:
        return frozenset(_freeze(i, what, segments, into) for i in item)
    if t is dict:
        _fail_at(f"unhashable {what} of type dict", *segments)
    return item


def _map(data: Any, into: dict[Any, Any]) -> dict[Any, Any]:
    if type(data) is not list:
        _fail_at("invalid Map payload (an array of [key, value] pairs)", ".value")
    for index, entry in enumerate(data):
        if type(entry) is not list or len(entry) != 2:
            _fail_at("invalid Map entry (a [key, value] pair)", f"[{index}]", ".value")
        into[_freeze(entry[0], "Map key", ("[0]", f"[{index}]", ".value"), into)] = entry[1]
    return into


def _set(data: Any, into: set[Any]) -> set[Any]:
    if type(data) is not list:
        _fail_at("invalid Set payload (an array)", ".value")
    for index, item in enumerate(data):
        into.add(_freeze(item, "Set item", (f"[{index}]", ".value"), into))
    return into


def _bytes(type_id: str, data: Any) -> bytes:
    if type(data) is not list or not all(type(b) is int for b in data):
        _fail_at(f"invalid {type_id} payload (an array of byte values 0-255)", ".value")
    try:
        out = bytes(data)
    except ValueError:
        _fail_at(f"invalid {type_id} payload (an array of byte values 0-255)", ".value")
    size = _BYTES_PER_ELEMENT[type_id]
    if len(out) % size:
        _fail_at(f"invalid {type_id} payload ({len(out)} bytes, not a multiple of {size})")
    return out


def _error(data: Any) -> RemoteErrorValue:
    if type(data) is not dict:
        _fail_at("invalid Error payload (an object)", ".value")
    name, message = data.get("name"), data.get("message")
    if type(name) is not str or type(message) is not str:
        _fail_at("invalid Error payload (name and message must be strings)", ".value")
    stack = data.get("stack")
    if stack is not None and type(stack) is not str:
        _fail_at("invalid Error payload (stack must be a string)", ".value.stack")
    custom = data.get("customFields")
    if custom is not None and type(custom) is not dict:
        _fail_at("invalid Error payload (customFields must be an object)", ".value.customFields")
    fields = {k: v for k, v in (custom or {}).items() if type(k) is str and k not in _ERROR_BLOCKED}
    return RemoteErrorValue(name, message, stack, fields, data.get("cause"))


class _Pending:
    """A graph node being read; met again before it is done means a cycle through it."""


class _Graph:
    """Reads Runner's graph format (``Serializer.serialize``); paths follow the value."""

    def __init__(self, nodes: dict[str, Any], cycles: bool = True) -> None:
        self.nodes = nodes
        self.cycles = cycles  # False: a reference to a node still being read is refused
        self.done: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}  # values each finished node stands for
        self.expanded = 0  # values the payload stands for, shared references written out

    def _grow(self, n: int) -> None:
        self.expanded += n
        if self.expanded > MAX_EXPANDED:
            _fail_at(
                f"the graph stands for more than MAX_EXPANDED ({MAX_EXPANDED}) values once "
                "its shared references are written out"
            )

    def value(self, x: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _Fail(_TOO_DEEP)
        self._grow(1)
        t = type(x)
        if t is list:
            out: list[Any] = []
            self._fill_list(out, x, depth)
            return out
        if t is not dict:
            return x
        if "__ref" in x:
            if type(x["__ref"]) is not str or len(x) != 1:
                _fail_at('invalid object reference (exactly {"__ref": "<id>"})')
            return self.ref(x["__ref"], depth + 1)
        if type(x.get("__type")) is str and "value" in x:
            try:
                data = self.value(x["value"], depth + 1)
            except _Fail as fail:
                fail.segments.append(".value")
                raise
            return _builtin(x["__type"], self._check(data, x["__type"]), None)
        out_obj: dict[str, Any] = {}
        self._fill_dict(out_obj, x, depth)
        return out_obj

    def _fill_list(self, out: list[Any], items: list[Any], depth: int) -> None:
        index = 0
        try:
            for index, item in enumerate(items):  # noqa: B007 - index names the failing item
                out.append(self.value(item, depth + 1))
        except _Fail as fail:
            fail.segments.append(f"[{index}]")
            raise

    def _fill_dict(self, out: dict[str, Any], source: dict[str, Any], depth: int) -> None:
        key = ""
        try:
            for key, item in source.items():
                if key not in _UNSAFE:
                    out[key] = self.value(item, depth + 1)
        except _Fail as fail:
            fail.segments.append(_key(key))
            raise

    @staticmethod
    def _check(data: Any, type_id: str) -> Any:
        """Refuse a payload that reaches a node still being read (a cycle Python can't hold)."""
        stack = [data]
        seen: set[int] = set()
        while stack:
            item = stack.pop()
            if isinstance(item, _Pending):
                _fail_at(f"a cycle through a {type_id!r} value cannot be represented in Python")
            if type(item) in (list, tuple, dict, set, frozenset) and id(item) not in seen:
                seen.add(id(item))
                stack.extend(item.values() if type(item) is dict else item)
                if type(item) is dict:
                    stack.extend(item)
        return data

    def ref(self, ref: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _Fail(_TOO_DEEP)
        if ref in self.done:
            if ref not in self.sizes and not self.cycles:  # no size yet: still being read
                _fail_at(f"node {ref!r} contains itself (a cycle), which is refused here")
            self._grow(self.sizes.get(ref, 0))  # a cycle (no size yet) is not written out
            return self.done[ref]
        before = self.expanded
        try:
            return self._build(ref, depth)
        finally:
            self.sizes[ref] = self.expanded - before

    def _build(self, ref: str, depth: int) -> Any:
        node = self.nodes.get(ref) if ref not in _UNSAFE else None
        if node is None:
            _fail_at(f"unresolved reference id {ref!r}")
        kind = node.get("kind") if type(node) is dict else None
        value = node.get("value") if type(node) is dict else None
        if kind == "array":
            if type(value) is not list:
                _fail_at(f"invalid array node {ref!r} (its value must be an array)")
            out: list[Any] = []
            self.done[ref] = out
            self._fill_list(out, value, depth)
            return out
        if kind == "object":
            if type(value) is not dict:
                _fail_at(f"invalid object node {ref!r} (its value must be an object)")
            obj: dict[str, Any] = {}
            self.done[ref] = obj
            self._fill_dict(obj, value, depth)
            return obj
        if kind == "type" and type(node.get("type")) is str:
            type_id = node["type"]
            into: Any = {} if type_id == "Map" else set() if type_id == "Set" else None
            self.done[ref] = _Pending() if into is None else into
            try:
                data = self.value(value, depth + 1)
            except _Fail as fail:
                fail.segments.append(".value")
                raise
            if into is None:
                data = self._check(data, type_id)
            result = _builtin(type_id, data, into)
            self.done[ref] = result
            return result
        _fail_at(f"unsupported node kind in node {ref!r}")
