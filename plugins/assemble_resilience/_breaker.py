"""``circuit_breaker``: after repeated failures, fail fast for a while, then try once."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import assembler
import runner
from runner.errors import CircuitOpen

from ._common import is_client_error

log = logging.getLogger("assemble.resilience.circuit_breaker")


@dataclass(frozen=True)
class BreakerConfig:
    """``circuit_breaker``'s config."""

    failure_threshold: int = assembler.option(
        5, doc="consecutive failures that open the circuit", minimum=1
    )
    reset_after: assembler.Duration = assembler.option(
        "30s", doc="how long the circuit stays open before one trial call"
    )


class Breaker:
    """Closed -> (threshold failures) -> open -> (reset_after) -> half-open: one trial call.

    A trial that succeeds closes the circuit; one that fails opens it again. Client
    errors (HTTP status < 500) and cancellations are not failures of the task. Every
    change of state starts a new ``generation``: a call admitted under an older one
    (still running when the circuit opened) changes nothing when it ends, so a late
    success cannot close an open circuit and only the trial decides a half-open one.
    """

    def __init__(self, threshold: int, reset_after: float) -> None:
        self.threshold, self.reset_after = threshold, reset_after
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False  # a half-open trial call is running
        self.generation = 0

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at < self.reset_after or self.trial:
            return "open"
        return "half-open"

    def admit(self, task: str) -> tuple[int, bool]:
        """``(generation, is_trial)`` of a call that may run; raises :class:`CircuitOpen`."""
        if self.opened_at is None:
            return self.generation, False
        waited = time.monotonic() - self.opened_at
        if waited < self.reset_after or self.trial:
            raise CircuitOpen(task, max(self.reset_after - waited, 0.0))
        self.trial = True
        return self.generation, True

    def succeeded(self, generation: int, trial: bool) -> None:
        if generation != self.generation:
            return
        if trial:  # half-open -> closed
            self.generation += 1
            self.opened_at, self.trial = None, False
        self.failures = 0

    def failed(self, task: str, generation: int, trial: bool) -> None:
        if generation != self.generation:
            return
        if trial:  # half-open -> open again
            self.generation += 1
            self.opened_at, self.trial = time.monotonic(), False
            return
        self.failures += 1
        if self.opened_at is None and self.failures >= self.threshold:
            log.warning(
                "circuit of %r opened after %d failures",
                task,
                self.failures,
                extra={"task": task},
            )
            self.generation += 1
            self.opened_at = time.monotonic()

    def abandoned(self, generation: int, trial: bool) -> None:
        """The call told nothing (cancelled, or a client error): let the next one try."""
        if trial and generation == self.generation:
            self.trial = False


def make_breaker(config: BreakerConfig) -> Callable[..., Awaitable[Any]]:
    breaker = Breaker(config.failure_threshold, config.reset_after)

    async def circuit_breaker(call: runner.TaskCall, config: Any) -> Any:
        tid = call.task.id
        generation, trial = breaker.admit(tid)
        try:
            result = await call.next()
        except Exception as exc:
            if is_client_error(exc):
                breaker.abandoned(generation, trial)
            else:
                breaker.failed(tid, generation, trial)
            raise
        except BaseException:  # cancelled: neither a success nor a failure
            breaker.abandoned(generation, trial)
            raise
        breaker.succeeded(generation, trial)
        return result

    circuit_breaker.breaker = breaker  # type: ignore[attr-defined]  # for tests and tools
    return circuit_breaker


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="circuit_breaker",
            kind="middleware",
            config=BreakerConfig,
            factory=make_breaker,
            description="fails fast with CircuitOpen (503) after repeated failures",
        )
    ]
