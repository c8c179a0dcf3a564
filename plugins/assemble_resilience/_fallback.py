"""``fallback``: when the task fails, answer with a value or another task's result."""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import assembler
import runner

from ._common import is_client_error

log = logging.getLogger("assemble.resilience.fallback")


@dataclass(frozen=True)
class FallbackConfig:
    """``fallback``'s config: a ``value`` or a ``task``, exactly one."""

    __config_schema__: ClassVar[dict[str, Any]] = {
        "oneOf": [{"required": ["value"]}, {"required": ["task"]}]
    }

    value: Any = assembler.option(None, doc="the result to answer with when the task fails")
    task: str | None = assembler.option(
        None,
        doc="id of a task to run (with the same input) when the task fails",
        minLength=1,
    )


def _dependencies(config: FallbackConfig) -> dict[str, str]:
    return {"fallback": config.task} if config.task is not None else {}


def make_fallback(config: FallbackConfig) -> Callable[..., Awaitable[Any]]:
    has_task, value = config.task is not None, config.value

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
            config=FallbackConfig,
            factory=make_fallback,
            dependencies=_dependencies,
            description="on failure, answers with a value or another task's result",
        )
    ]
