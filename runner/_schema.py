from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

from .errors import FieldError, InvalidDefinitionError, ValidationError

_FORMATS = FormatChecker()

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
        self._validator = cls(schema, format_checker=_FORMATS)
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
        errors = sorted(self._validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            raise ValidationError(what, owner, [_field(e) for e in errors])


def _field(err: jsonschema.ValidationError) -> FieldError:
    path = tuple(err.absolute_path)
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
            return FieldError((*path, extra[0]), "is not allowed here (unknown property)")
    return FieldError(path, err.message)


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
