"""``http.route``: the tag that puts a task on the HTTP API, and how a request becomes input.

The tag only carries config (`method`, `path`, `status`); ``http.server`` collects the
tagged tasks from the store. This module also holds the request-side rules the server
applies: reading a bounded JSON body, merging path, query and body into the input,
coercing URL strings to the types the input schema asks for, and the error envelope.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import assembler

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_JSON_DEPTH = 64
PARAM = re.compile(r"\{([^{}]*)\}")
_INTEGER = re.compile(r"-?[0-9]+")
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(:(str|int|float|path|uuid))?$")


@dataclass(frozen=True)
class RouteConfig:
    """The ``http.route`` tag's config (tag configs reach their readers as mappings:
    ``assembler.from_config(RouteConfig, config)`` gives the typed route)."""

    method: str = assembler.option(
        doc="the HTTP method (upper case): GET, POST, PUT, PATCH or DELETE",
        schema={"enum": list(METHODS)},
    )
    path: str = assembler.option(
        doc="the URL path, starting with `/`; `{name}` captures one segment "
        "into the input key `name` (e.g. `/users/{id}`)",
        pattern=r"^/[^\s?#]*$",
    )
    status: int = assembler.option(
        200, doc="the status of a successful response (204: no body)", minimum=200, maximum=299
    )


SCHEMA: dict[str, Any] = assembler.config_schema(RouteConfig)


class BadRequest(Exception):
    """The request cannot become an input: a 400 or a 413 with a message for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.close = False  # answer with `Connection: close` (a body left unread)


def shape(path: str) -> str:
    """``path`` with each parameter name dropped: ``/users/{id}`` and ``/users/{uid}`` match."""
    return PARAM.sub(lambda m: "{" + m.group(1).partition(":")[2] + "}", path)


def check_route(config: Any, report: assembler.ConfigReport) -> None:
    path = (config or {}).get("path")
    if not isinstance(path, str):
        return
    names: list[str] = []
    for m in PARAM.finditer(path):
        if not PARAM_NAME.match(m.group(1)):
            report(
                f"{m.group(0)!r} is not a path parameter",
                at=("path",),
                hint="write {name} (a Python identifier), optionally {name:int}",
            )
            return
        names.append(m.group(1).partition(":")[0])
    if "{" in PARAM.sub("", path) or "}" in PARAM.sub("", path):
        report("unbalanced braces in the path", at=("path",), hint="write /users/{id}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        report(
            f"path parameter {dupes[0]!r} appears twice",
            at=("path",),
            hint="give each parameter its own name",
        )


def check_routes(manifest: assembler.Manifest, report: assembler.Report) -> None:
    """Each route's path parameters; two tasks on one method and path (parameter names
    aside) are reported at both places."""
    seen: dict[tuple[str, str], list[tuple[str, tuple[Any, ...]]]] = {}
    for tid, body, at in manifest.components("tasks"):
        tags = body.get("tags")
        route = tags.get("http.route") if isinstance(tags, dict) else None
        if not isinstance(route, dict):
            continue
        place = (*at, "tags", "http.route")

        def sink(message: str, *, at: Any = (), hint: str = "", _p: Any = place) -> None:
            report(message, at=(*_p, *at), code="http/bad-path", hint=hint)

        check_route(route, sink)  # type: ignore[arg-type]
        method, path = route.get("method"), route.get("path")
        if isinstance(method, str) and isinstance(path, str):
            key = (method.upper(), shape(path))
            seen.setdefault(key, []).append((tid, place))
    for (method, _), places in seen.items():
        if len(places) < 2:
            continue
        for tid, at in places:
            others = ", ".join(repr(t) for t, _ in places if t != tid)
            report(
                f"task {tid!r}: {method} {routes_path(manifest, at)} is also the route of {others}",
                at=at,
                code="http/duplicate-route",
                hint="one method and path serve one task: change the path or the method",
            )


def routes_path(manifest: assembler.Manifest, at: tuple[Any, ...]) -> str:
    node: Any = manifest.data
    for key in at:
        node = node.get(key) if isinstance(node, dict) else None
    return str(node.get("path")) if isinstance(node, dict) else "?"


def _reject_constant(name: str) -> Any:
    raise BadRequest(400, "http.bad_json", f"the body is not valid JSON: {name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf: as unwelcome as Infinity
        raise BadRequest(
            400, "http.bad_json", f"the body is not valid JSON: {text[:20]} is out of range"
        )
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node)
    return deepest


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw`` (empty: ``{}``); :class:`BadRequest` (400) otherwise."""
    return parse_json(raw)[0]


#: A run of 19 digits: the only way a JSON integer can pass 64 bits (digits inside a
#: string match too, and only cost the walk).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def parse_json(raw: bytes) -> tuple[dict[str, Any], bool]:
    """The JSON object in ``raw`` (empty: ``{}``), and whether it may hold what the
    boundary rule refuses (so that only then is it walked: the hot path stays cheap).

    Strict JSON holds a lone surrogate or a NUL only through a ``\\u`` escape (raw
    control characters and invalid UTF-8 are refused here); NaN and infinities are
    refused here too (400). What is left: a ``\\u`` in the bytes, or a run of 19 digits
    (an integer past 64 bits, perhaps); both are found by scanning the bytes in C. A
    ``parse_int`` hook, called per integer, cost 1.5 us more on a body with nine
    integers (measured). :class:`BadRequest` (400) if ``raw`` is not a JSON object.
    """
    if not raw.strip():
        return {}, False
    value = _loads(raw)
    return value, b"\\u" in raw or _LONG_DIGITS.search(raw) is not None


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        value = None
        too_deep = True
    except BadRequest:
        raise
    except UnicodeDecodeError:
        raise BadRequest(
            400, "http.bad_json", "the body is not valid JSON: not UTF-8 text"
        ) from None
    except (ValueError, TypeError) as exc:
        # a JSONDecodeError says where; other ValueErrors (an integer of thousands of
        # digits, over Python's limit) say nothing useful to a caller
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "a value is out of range"
        raise BadRequest(400, "http.bad_json", f"the body is not valid JSON: {detail}") from None
    else:
        too_deep = _depth(value) > MAX_JSON_DEPTH
    if too_deep:
        raise BadRequest(
            400, "http.bad_json", f"the body is nested deeper than {MAX_JSON_DEPTH} levels"
        )
    if not isinstance(value, dict):
        raise BadRequest(
            400, "http.bad_json", f"the body must be a JSON object, not {_json_type(value)}"
        )
    return value


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type (``application/merge-patch+json``), its
    parameters (``; charset=utf-8``) aside. A missing header is not JSON: a browser
    sends a body without one cross-site, no preflight asked."""
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    if media == "application/json":
        return True
    kind, slash, sub = media.partition("/")
    return bool(kind) and slash == "/" and len(sub) > 5 and sub.endswith("+json")


def unsupported_media_type() -> BadRequest:
    """The 415 of a JSON route sent a body of another type."""
    return BadRequest(
        415,
        "http.unsupported_media_type",
        "the body must be JSON: send it with Content-Type: application/json",
    )


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a number"


def property_types(schema: Any, key: str) -> set[str]:
    """The JSON types the input schema allows for property ``key`` (empty: any)."""
    return _types(schema, key)


def _types(schema: Any, key: str) -> set[str]:
    if not isinstance(schema, Mapping):
        return set()
    prop = (schema.get("properties") or {}).get(key)
    if not isinstance(prop, Mapping):
        return set()
    t = prop.get("type")
    return {t} if isinstance(t, str) else {x for x in t if isinstance(x, str)} if t else set()


def coerce(value: str, types: set[str]) -> Any:
    """A URL string as the schema's type (integer, number, boolean) when it reads as one."""
    if not types or "string" in types:
        return value
    integral = _INTEGER.fullmatch(value) is not None
    if "integer" in types and integral:
        try:
            return int(value)
        except ValueError:  # past Python's limit on digits (4300): left as text, a 422
            pass
    if "number" in types:
        if integral:
            try:
                return int(value)  # exact, however large (a float would round it)
            except ValueError:
                pass
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    return value


def merge(
    schema: Any,
    path_params: Mapping[str, Any],
    query: Sequence[tuple[str, str]],
    body: dict[str, Any],
    types_of: Callable[[str], set[str]] | None = None,
) -> dict[str, Any]:
    """The input: the body, then query parameters over it, then path parameters over all.

    A repeated query key gives a list. URL values are coerced to the input schema's
    property type (integer, number, boolean) when they read as one.
    """
    types_of = types_of or partial(_types, schema)
    out = dict(body)
    grouped: dict[str, list[str]] = {}
    for k, v in query:
        grouped.setdefault(k, []).append(v)
    for k, values in grouped.items():
        types = types_of(k)
        if len(values) > 1 or "array" in types:
            items = schema["properties"][k].get("items") if "array" in types else None
            item_types = _types({"properties": {"x": items}}, "x") if items else set()
            out[k] = [coerce(v, item_types) for v in values]
        else:
            out[k] = coerce(values[0], types)
    for k, v in path_params.items():
        out[k] = coerce(v, types_of(k)) if isinstance(v, str) else v
    return out


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="http.route",
            kind="tag",
            config_schema=SCHEMA,
            check=check_route,
            description="serves the tagged task at `method` `path` on http.server",
        )
    ]
