"""Durations in configs: seconds, or a string with a unit (``250ms``, ``60s``, ``5m``)."""

from __future__ import annotations

import re
from typing import Any

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)\s*$"
_RE = re.compile(_PATTERN)

#: JSON Schema of a duration; put it in a component's config schema (``{"ttl": DURATION}``).
DURATION: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": _PATTERN},
    ],
    "description": "seconds, or a string with a unit: 250ms, 60s, 5m, 1h",
}


def duration(value: Any) -> float:
    """Seconds from a duration (``1.5``, ``"250ms"``, ``"5m"``); raises ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    if isinstance(value, str):
        m = _RE.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration; write seconds or e.g. 250ms, 60s, 5m")
