"""``circuit_breaker``: after repeated failures, fail fast for a while, then try once."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import assembler
import runner
from runner.errors import CircuitOpen

from ._common import is_client_error

log = logging.getLogger("assemble.resilience.circuit_breaker")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "failure_threshold": {
            "type": "integer",
            "minimum": 1,
            "default": 5,
            "description": "consecutive failures that open the circuit",
        },
        "reset_after": {
            **assembler.DURATION,
            "default": "30s",
            "description": "how long the circuit stays open before one trial call",
        },
    },
    "additionalProperties": False,
}


class Breaker:
    """Closed -> (threshold failures) -> open -> (reset_after) -> half-open: one trial call.

    A trial that succeeds closes the circuit; one that fails opens it again. Client
    errors (HTTP status < 500) and cancellations are not failures of the task.
    """

    def __init__(self, threshold: int, reset_after: float) -> None:
        self.threshold, self.reset_after = threshold, reset_after
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False  # a half-open trial call is running

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at < self.reset_after or self.trial:
            return "open"
        return "half-open"

    def admit(self, task: str) -> bool:
        """Whether the call may run; ``True`` means it is the half-open trial."""
        if self.opened_at is None:
            return False
        waited = time.monotonic() - self.opened_at
        if waited < self.reset_after or self.trial:
            raise CircuitOpen(task, max(self.reset_after - waited, 0.0))
        self.trial = True
        return True

    def succeeded(self) -> None:
        self.failures, self.opened_at, self.trial = 0, None, False

    def failed(self, task: str) -> None:
        self.failures += 1
        self.trial = False
        if self.opened_at is not None or self.failures >= self.threshold:
            if self.opened_at is None:
                log.warning(
                    "circuit of %r opened after %d failures",
                    task,
                    self.failures,
                    extra={"task": task},
                )
            self.opened_at = time.monotonic()


def make_breaker(config: Any) -> Callable[..., Awaitable[Any]]:
    breaker = Breaker(
        int(config.get("failure_threshold", 5)),
        assembler.duration(config.get("reset_after", "30s")),
    )

    async def circuit_breaker(call: runner.TaskCall, config: Any) -> Any:
        tid = call.task.id
        trial = breaker.admit(tid)
        try:
            result = await call.next()
        except Exception as exc:
            if is_client_error(exc):
                if trial:
                    breaker.trial = False  # the trial told nothing: let the next one try
                raise
            breaker.failed(tid)
            raise
        except BaseException:  # cancelled: neither a success nor a failure
            if trial:
                breaker.trial = False
            raise
        breaker.succeeded()
        return result

    circuit_breaker.breaker = breaker  # type: ignore[attr-defined]  # for tests and tools
    return circuit_breaker


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="circuit_breaker",
            kind="middleware",
            config_schema=SCHEMA,
            factory=make_breaker,
            description="fails fast with CircuitOpen (503) after repeated failures",
        )
    ]
