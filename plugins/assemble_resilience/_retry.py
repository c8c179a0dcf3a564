"""``retry``: run the task again after a failure, with capped, jittered backoff."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import anyio

import assembler
import runner

from ._common import is_client_error

log = logging.getLogger("assemble.resilience.retry")

#: The current attempt (1, 2, ...) inside a ``retry``: register-free, read it with
#: ``attempt.try_use(1)``, or depend on ``retry.attempt`` to have it injected.
attempt = runner.AsyncContext(
    "retry.attempt", meta={"description": "the attempt number (1-based) inside a retry"}
)


@dataclass(frozen=True)
class RetryConfig:
    """``retry``'s config."""

    attempts: int = assembler.option(
        3, doc="how many times the task runs at most (1 = no retry)", minimum=1, maximum=100
    )
    backoff: Literal["exponential", "linear", "constant"] = assembler.option(
        "exponential", doc="how the delay grows: delay * 2^(n-1), delay * n, or delay"
    )
    delay: assembler.Duration = assembler.option("100ms", doc="the base delay")
    max_delay: assembler.Duration = assembler.option("2s", doc="the cap on one delay")
    jitter: bool = assembler.option(
        True, doc="full jitter: each delay is random between 0 and the computed one"
    )
    retry_on: list[type[BaseException]] | None = assembler.option(
        None,
        doc="exception classes to retry (import paths or builtin names, e.g. "
        "ConnectionError); default: every Exception but client errors (HTTP status < 500)",
        schema={"type": "array", "items": {"type": "string"}},
    )


def _check(config: Any, report: assembler.ConfigReport) -> None:
    typed = assembler.from_config(RetryConfig, config)  # checks run on schema-valid configs
    delay, cap = typed.delay, typed.max_delay
    if cap < delay:
        report(
            f"max_delay ({cap:g}s) is below delay ({delay:g}s)",
            at=("max_delay",),
            hint="raise max_delay, or lower delay",
        )


def _exception_class(obj: Any) -> str | None:
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return None
    return "is not an exception class"


def delays(backoff: str, delay: float, max_delay: float, jitter: bool) -> Callable[[int], float]:
    """The wait after failed attempt ``n`` (1-based)."""

    def grow(n: int) -> float:
        if backoff == "exponential":
            return float(delay * 2 ** (n - 1))
        return delay * n if backoff == "linear" else delay

    def wait(n: int) -> float:
        ceiling = min(max_delay, grow(min(n, 64)))
        return random.uniform(0, ceiling) if jitter else ceiling

    return wait


def make_retry(config: RetryConfig) -> Callable[..., Awaitable[Any]]:
    attempts = config.attempts
    wait = delays(config.backoff, config.delay, config.max_delay, config.jitter)
    classes = tuple(config.retry_on or ())
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(f"retry_on: {cls!r} is not an exception class")

    def retryable(exc: Exception) -> bool:
        if classes:
            return isinstance(exc, classes)
        return not is_client_error(exc)

    async def retry(call: runner.TaskCall, config: Any) -> Any:
        n = 1
        while True:
            try:
                with attempt.provide(n):
                    return await call.next()
            except Exception as exc:
                if n >= attempts or not retryable(exc):
                    raise
                pause = wait(n)
                log.warning(
                    "task %r failed on attempt %d of %d (%s: %s); retrying in %.3fs",
                    call.task.id,
                    n,
                    attempts,
                    type(exc).__name__,
                    exc,
                    pause,
                    extra={"task": call.task.id, "attempt": n},
                )
            await anyio.sleep(pause)  # cancellable: a cancel here returns at once
            n += 1

    return retry


def components() -> list[Any]:
    return [
        assembler.Component(
            name="retry",
            kind="middleware",
            config=RetryConfig,
            factory=make_retry,
            imports={"retry_on": _exception_class},
            check=_check,
            description="runs a failed task again with capped, jittered backoff",
        ),
        attempt,
    ]
