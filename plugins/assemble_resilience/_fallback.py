"""``fallback``: when the task fails, answer with a value or another task's result."""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import assembler
import runner

from ._common import is_client_error

log = logging.getLogger("assemble.resilience.fallback")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "value": {"description": "the result to answer with when the task fails"},
        "task": {
            "type": "string",
            "minLength": 1,
            "description": "id of a task to run (with the same input) when the task fails",
        },
    },
    "oneOf": [{"required": ["value"]}, {"required": ["task"]}],
    "additionalProperties": False,
}


def _dependencies(config: Any) -> dict[str, str]:
    task = (config or {}).get("task")
    return {"fallback": task} if isinstance(task, str) else {}


def make_fallback(config: Any) -> Callable[..., Awaitable[Any]]:
    has_task = "task" in config
    value = config.get("value")

    async def fallback(
        call: runner.TaskCall, config: Any, fallback: Callable[[Any], Awaitable[Any]] | None = None
    ) -> Any:
        try:
            return await call.next()
        except Exception as exc:
            if is_client_error(exc):
                raise  # the caller's mistake is theirs to see, not hidden behind a default
            log.warning(
                "task %r failed (%s: %s); answering with its fallback",
                call.task.id,
                type(exc).__name__,
                exc,
                extra={"task": call.task.id},
            )
            if has_task:
                assert fallback is not None
                return await fallback(call.input)
            return copy.deepcopy(value)  # a caller mutating it cannot change the next answer

    return fallback


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="fallback",
            kind="middleware",
            config_schema=SCHEMA,
            factory=make_fallback,
            dependencies=_dependencies,
            description="on failure, answers with a value or another task's result",
        )
    ]
