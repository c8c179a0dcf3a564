"""The boundary rule: what a value from outside must not hold, checked where it enters.

Every edge (the HTTP server, the tunnels, ``assemble call --input``) calls
:func:`check_boundary` on what a caller sent, before any task runs. It refuses, naming
each field, what no store keeps and no JSON peer reads back:

- text with a lone surrogate (``"\\ud800"``): not Unicode, it cannot be encoded as UTF-8,
  so a database, a log line or a JSON answer would fail on it later;
- text with a NUL character (``"\\u0000"``): PostgreSQL refuses it in text, C-string
  libraries cut the text there;
- a number that is not finite (NaN, ±infinity): not JSON, and it passes comparisons
  such as ``exclusiveMinimum: 0`` it should fail;
- an integer outside the signed 64-bit range: no SQL column or JavaScript peer holds it.

Keys of objects are checked as text too. The walk stops after :data:`MAX_FIELD_ERRORS`
problems, and never recurses (a deeply nested value cannot exhaust the stack).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import FieldError, ValidationError

#: The most problems one check reports: a caller learns enough, an answer stays small.
MAX_FIELD_ERRORS = 20
#: Integers a value may hold: the signed 64-bit range (SQL BIGINT, Java long, Go int64).
MIN_INT, MAX_INT = -(2**63), 2**63 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")

SURROGATE = "holds a lone surrogate ({}), which is not text and cannot be stored"
NUL = "holds a NUL character (U+0000), which cannot be stored"
NOT_FINITE = "is not a finite number (NaN and infinity are not JSON numbers)"
OUT_OF_RANGE = "is an integer outside the 64-bit range (-2**63 .. 2**63 - 1)"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot cross the boundary, or ``None`` when it can."""
    if text.isascii():
        return NUL if "\x00" in text else None
    found = _SURROGATE.search(text)
    if found is not None:
        return SURROGATE.format(f"U+{ord(found.group()):04X}")
    return NUL if "\x00" in text else None


def boundary_errors(value: Any) -> list[FieldError]:
    """What in ``value`` cannot cross the boundary (at most :data:`MAX_FIELD_ERRORS`)."""
    errors: list[FieldError] = []
    # (value, where): `where` links to its parent's as (parent where, key), so that a
    # deep value costs no copy of its path per level; a path is spelled out for errors.
    stack: list[tuple[Any, Any]] = [(value, None)]
    while stack and len(errors) < MAX_FIELD_ERRORS:
        node, where = stack.pop()
        kind = type(node)
        if kind is str:
            problem = text_problem(node)
            if problem is not None:
                errors.append(FieldError(_path(where), problem))
        elif kind is int:
            if not MIN_INT <= node <= MAX_INT:
                errors.append(FieldError(_path(where), OUT_OF_RANGE))
        elif kind is float:
            if not math.isfinite(node):
                errors.append(FieldError(_path(where), NOT_FINITE))
        elif isinstance(node, Mapping):
            for key, item in reversed(list(node.items())):
                problem = text_problem(key) if isinstance(key, str) else None
                if problem is not None:
                    shown = (where, _shown_key(key))
                    errors.append(FieldError(_path(shown), "(the key) " + problem))
                else:
                    stack.append((item, (where, key)))
        elif isinstance(node, list | tuple):
            stack.extend((node[i], (where, i)) for i in range(len(node) - 1, -1, -1))
        elif isinstance(node, str):  # a str subclass (an enum's value)
            stack.append((str(node), where))
        elif isinstance(node, int) and not isinstance(node, bool):
            stack.append((int(node), where))
        elif isinstance(node, float):
            stack.append((float(node), where))
    errors.sort(key=lambda e: [str(p) for p in e.path])
    return errors


def _path(where: Any) -> tuple[str | int, ...]:
    keys: list[str | int] = []
    while where is not None:
        where, key = where
        keys.append(key)
    return tuple(reversed(keys))


def check_boundary(value: Any, *, what: str = "input", owner: str = "?") -> None:
    """Raise :class:`~runner.errors.ValidationError` (422) naming each field of ``value``
    that cannot cross the boundary (see the module's docstring)."""
    errors = boundary_errors(value)
    if errors:
        raise ValidationError(what, owner, errors)


def _shown_key(key: str) -> str:
    """A key that cannot be shown as it is: its printable escape, cut short."""
    shown = key.encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown if len(shown) <= 40 else shown[:40] + "…"
