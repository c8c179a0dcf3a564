"""Typed component configs, declared once.

A component declares its config as one frozen dataclass: each field is a config key,
its annotation the key's type, :func:`option` its default (none: the key is required),
its description and any JSON Schema keyword its type does not say (``minimum``,
``pattern``...); a class attribute ``__config_schema__`` adds rules across keys
(``{"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}``). From that class come the
JSON Schema (``assemble schema``, editors, validation: :func:`config_schema`), the
defaults, and the typed object the component's ``init``/``factory`` receives
(:func:`from_config`)::

    @dataclass(frozen=True)
    class TimeoutConfig:
        after: Duration = option(doc="the deadline of one call (e.g. 500ms, 5s)")

    assembler.Component(name="timeout", kind="middleware", config=TimeoutConfig,
                        factory=make_timeout)   # make_timeout(config: TimeoutConfig)

Types: ``str``, ``int``, ``float``, ``bool``, :data:`Duration` (written ``500ms``,
``5s``, a number of seconds; a ``float`` of seconds in the object), ``Literal[...]``,
``list[T]``, ``dict[str, T]``, ``T | None``, ``Any`` and nested dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, NewType, TypeVar, get_args, get_origin, get_type_hints

from ._durations import DURATION, duration

#: Seconds, written in a manifest as a duration (``500ms``, ``5s``, ``1h``) or a number.
Duration = NewType("Duration", float)

C = TypeVar("C")

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
}


def option(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    schema: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> Any:
    """A config key: its ``default`` as a manifest would write it (none: required; ``None``:
    optional, absent from the object as ``None``, no default shown), its description, and
    JSON Schema keywords its type does not say (``minimum=1``). ``schema`` replaces what
    the type would give (a key whose typed value is not what the manifest writes, such
    as import paths that arrive as the objects they name)."""
    metadata = {"doc": doc, "schema": keywords, "replace": schema}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@cache
def config_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of the config ``cls`` declares (an object, no other keys)."""
    hints = get_type_hints(cls, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        replaced = f.metadata.get("replace")
        default = _default(f)
        kind = hints[f.name] if default is not None else _not_none(hints[f.name])
        base = dict(replaced) if replaced is not None else _type_schema(kind)
        prop = {**base, **f.metadata.get("schema", {})}
        if f.metadata.get("doc"):
            prop["description"] = f.metadata["doc"]
        if default is dataclasses.MISSING:
            required.append(f.name)
        elif default is not None:
            prop["default"] = default
        properties[f.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    # rules across keys the fields cannot say (``oneOf`` of two keys, say)
    schema.update(getattr(cls, "__config_schema__", {}))
    schema["additionalProperties"] = False
    return schema


def _not_none(tp: Any) -> Any:
    """``T`` of ``T | None`` (an optional key: absent, not null)."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        kinds = [a for a in get_args(tp) if a is not type(None)]
        if len(kinds) == 1:
            return kinds[0]
    return tp


def _type_schema(tp: Any) -> dict[str, Any]:
    if tp is Duration:
        return dict(DURATION)
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if tp is Any:
        return {}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return config_schema(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1])}
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1 and len(args) == 2:
            return {"anyOf": [_type_schema(kinds[0]), {"type": "null"}]}
    raise TypeError(f"a config field cannot be of type {tp!r}")


def from_config(cls: type[C], config: Mapping[str, Any] | C | None) -> C:
    """The typed object of a config that passed :func:`config_schema` (defaults filled
    in, durations in seconds, nested objects typed); an object of ``cls`` as it is, so a
    factory may take either (``make(from_config(MyConfig, config))``)."""
    if isinstance(config, cls):
        return config
    config = config or {}
    assert isinstance(config, Mapping)
    hints = get_type_hints(cls, include_extras=True)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = config.get(f.name, dataclasses.MISSING)
        if value is dataclasses.MISSING:
            value = _default(f)
        if value is not dataclasses.MISSING:
            values[f.name] = _typed(hints[f.name], value)
    return cls(**values)


def _typed(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    if tp is Duration:
        return duration(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_config(tp, value)
    origin, args = get_origin(tp), get_args(tp)
    if origin is type:  # a class an import path named: arrives resolved
        return value
    if origin is list:
        return [_typed(args[0], v) for v in value]
    if origin is dict:
        return {k: _typed(args[1], v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return _typed(kinds[0], value) if len(kinds) == 1 else value
    return value
