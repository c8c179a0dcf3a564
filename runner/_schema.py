from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from functools import cache
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

from ._boundary import MAX_FIELD_ERRORS
from ._secrets import is_secret_key
from .errors import FieldError, InvalidDefinitionError, ValidationError

_FORMATS = FormatChecker()

#: How much of an offending value a message may echo (its repr, cut to this length).
MAX_SHOWN = 64


def _finite_number(checker: Any, instance: Any) -> bool:
    """JSON Schema's ``number``, without NaN and ±infinity (not JSON numbers)."""
    return (
        isinstance(instance, int | float)
        and not isinstance(instance, bool)
        and (type(instance) is int or math.isfinite(instance))
    )


@cache
def _strict(cls: Any) -> Any:
    """``cls`` (a jsonschema validator class) whose ``number`` admits finite values only."""
    checker = cls.TYPE_CHECKER.redefine("number", _finite_number)
    return jsonschema.validators.extend(cls, type_checker=checker)  # type: ignore[no-untyped-call]


#: Keywords whose meaning the two libraries may read differently (format checkers,
#: regex dialects): a schema that has one is checked by jsonschema alone.
_DIALECT_KEYWORDS = frozenset({"format", "pattern", "patternProperties", "$dynamicRef"})


def _fast_validator(schema: Mapping[str, Any] | bool) -> Any:
    """A jsonschema-rs validator for ``schema``, or ``None`` where only jsonschema may judge.

    jsonschema-rs is an accelerator (imported on first use: the CLI's cold start does
    not pay for it): it answers "valid?" some 30x faster; errors still come from
    jsonschema."""
    if _mentions(schema, _DIALECT_KEYWORDS):
        return None
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a dependency; the check works without it
        return None
    try:
        plain = schema if isinstance(schema, bool | dict) else dict(schema)
        return jsonschema_rs.validator_for(plain, offline=True)
    except Exception:  # a schema it cannot compile: jsonschema alone, as before
        return None


def _mentions(node: Any, keys: frozenset[str]) -> bool:
    if isinstance(node, dict):
        return any(k in keys or _mentions(v, keys) for k, v in node.items())
    if isinstance(node, list):
        return any(_mentions(v, keys) for v in node)
    return False


class Schema:
    """A JSON Schema (draft 2020-12 unless ``$schema`` says otherwise), compiled once."""

    __slots__ = ("_fast", "_validator", "schema")

    def __init__(self, schema: Mapping[str, Any] | bool, *, owner: str = "?") -> None:
        cls = jsonschema.validators.validator_for(schema, default=Draft202012Validator)
        try:
            cls.check_schema(schema)  # type: ignore[arg-type]
        except jsonschema.SchemaError as exc:
            err = best_match(cls(cls.META_SCHEMA).iter_errors(schema)) or exc
            where = "/".join(str(p) for p in err.path) or "(root)"
            raise InvalidDefinitionError(
                f"the schema of {owner!r} is not a valid JSON Schema at {where}: {err.message}",
                hint="check the schema against https://json-schema.org/draft/2020-12",
            ) from None
        self.schema = schema
        self._validator = _strict(cls)(schema, format_checker=_FORMATS)
        self._fast = _fast_validator(schema)
        for path, ref in self.dangling_refs(schema):
            where = "/".join(str(p) for p in path) or "(root)"
            raise InvalidDefinitionError(
                f"the schema of {owner!r} has a $ref {ref!r} at {where} that points nowhere",
                hint="point $ref at a definition in the same schema, e.g. #/$defs/name",
            )

    @staticmethod
    def dangling_refs(schema: Any) -> list[tuple[tuple[str | int, ...], str]]:
        """Every ``$ref`` in a (metaschema-valid) schema that does not resolve, and where."""
        cls = jsonschema.validators.validator_for(schema, default=Draft202012Validator)
        resolver = getattr(cls(schema), "_resolver", None)
        if resolver is None:  # pragma: no cover  # an older jsonschema
            return []
        out = []
        for path, ref in _refs(schema, ()):
            try:
                resolver.lookup(ref)
            except Exception:  # referencing's errors share no public base
                out.append((path, ref))
        return out

    def check(self, instance: Any, what: str, owner: str) -> None:
        """Raise :class:`ValidationError` naming every failing field.

        A valid instance is recognised by jsonschema-rs where the schema allows (the hot
        path: a task's input on every call); anything it does not accept, or cannot
        read (a non-JSON Python value), is judged by jsonschema, which names the fields.
        """
        fast = self._fast
        if fast is not None:
            try:
                if fast.is_valid(instance):
                    return
            except Exception:  # a value it cannot convert (a datetime, an int key)
                pass
        found = itertools.islice(self._validator.iter_errors(instance), MAX_FIELD_ERRORS)
        errors = sorted(found, key=lambda e: [str(p) for p in e.path])
        if errors:
            raise ValidationError(what, owner, [_field(e) for e in errors])


def _field(err: jsonschema.ValidationError) -> FieldError:
    path = tuple(err.absolute_path)
    if (
        err.validator == "type"
        and isinstance(err.instance, float)
        and not math.isfinite(err.instance)
    ):
        return FieldError(path, "is not a finite number (NaN and infinity are not JSON numbers)")
    if err.validator == "required" and isinstance(err.validator_value, list):
        for name in err.validator_value:
            if isinstance(name, str) and err.message.startswith(repr(name)):
                return FieldError((*path, name), "is required")
    if (
        err.validator == "additionalProperties"
        and isinstance(err.instance, dict)
        and isinstance(err.schema, dict)
        and "patternProperties" not in err.schema
    ):
        props = err.schema.get("properties", {})
        extra = sorted(k for k in err.instance if k not in props)
        if extra:
            return FieldError(
                (*path, _short_key(extra[0])), "is not allowed here (unknown property)"
            )
    return FieldError(path, _bounded(err.message, err.instance, path))


def _bounded(message: str, instance: Any, path: tuple[Any, ...]) -> str:
    """``message`` echoing at most a short prefix of ``instance``: nothing of the value of
    a secret-named field (``password``, ``token``, ...), nothing of an object or array
    (it may hold such a field), a long text cut to :data:`MAX_SHOWN` characters."""
    secret = any(is_secret_key(p) for p in path)
    container = isinstance(instance, dict | list)
    if not (secret or container or isinstance(instance, str)):
        return message  # a number, a boolean, null: short (Python caps digits at 4300)
    shown = repr(instance)
    if shown not in message:
        return message
    if secret and message.startswith(shown + " "):
        return message[len(shown) + 1 :]  # `password: is too short`
    if secret or container:
        return message.replace(shown, _describe(instance))
    if len(shown) <= MAX_SHOWN:
        return message
    return message.replace(shown, f"{shown[: MAX_SHOWN - 1]}… ({len(instance):,} characters)")


def _describe(instance: Any) -> str:
    if isinstance(instance, dict):
        return "the object"
    if isinstance(instance, list):
        return "the array"
    return "the value"


def _short_key(key: str) -> str:
    return key if len(key) <= MAX_SHOWN else key[: MAX_SHOWN - 1] + "…"


def _refs(node: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    if isinstance(node, dict):
        found = [((*path, "$ref"), node["$ref"])] if isinstance(node.get("$ref"), str) else []
        for key, value in node.items():
            if key not in ("const", "enum", "default", "examples"):
                found += _refs(value, (*path, key))
        return found
    if isinstance(node, list):
        return [r for i, item in enumerate(node) for r in _refs(item, (*path, i))]
    return []


def compile_schema(schema: Mapping[str, Any] | bool | Schema | None, owner: str) -> Schema | None:
    """Return a compiled schema (or ``None``); accepts an already compiled one."""
    if schema is None or isinstance(schema, Schema):
        return schema
    return Schema(schema, owner=owner)
