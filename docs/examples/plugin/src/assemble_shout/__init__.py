"""An example assemble plugin (see docs/plugins.md).

It offers two component types:

- ``shout.upper`` (task middleware): upper-cases a task's string result and adds a suffix.
- ``shout.counter`` (resource): a counter that starts at ``config.start``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import assembler
import runner

UPPER_SCHEMA = {
    "type": "object",
    "properties": {"suffix": {"type": "string", "maxLength": 5}},
    "additionalProperties": False,
}
COUNTER_SCHEMA = {
    "type": "object",
    "properties": {"start": {"type": "integer", "minimum": 0}},
    "additionalProperties": False,
}


def make_upper(config: dict[str, Any] | None) -> Callable[..., Awaitable[Any]]:
    """A factory: called once per use of `shout.upper`, so each use could keep its own state."""
    suffix = (config or {}).get("suffix", "!")

    async def upper(call: runner.TaskCall, config: Any) -> Any:
        result = await call.next()
        return result.upper() + suffix if isinstance(result, str) else result

    return upper


class Counter:
    def __init__(self, start: int) -> None:
        self.value = start

    def bump(self) -> int:
        self.value += 1
        return self.value


def make_counter(config: dict[str, Any] | None) -> Counter:
    return Counter((config or {}).get("start", 0))


@assembler.hookimpl
def assemble_components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="shout.upper",
            kind="middleware",
            config_schema=UPPER_SCHEMA,
            factory=make_upper,
            description="upper-cases string results",
        ),
        assembler.Component(
            name="shout.counter",
            kind="resource",
            config_schema=COUNTER_SCHEMA,
            init=make_counter,
            description="a counter resource",
        ),
    ]


@assembler.hookimpl
def assemble_validate(manifest: assembler.Manifest, report: assembler.Report) -> None:
    """A cross-component rule: at most one `shout.counter` per app."""
    counters = [
        (id, path)
        for id, body, path in manifest.components("resources")
        if body.get("use") == "shout.counter"
    ]
    for id, path in counters[1:]:
        report(
            f"resource {id!r} is a second shout.counter",
            at=path,
            code="shout/one-counter",
            hint=f"use {counters[0][0]!r} instead",
        )
