"""``concurrency``: at most ``limit`` runs at once; the others wait their turn (FIFO)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.lowlevel import RunVar

import assembler
import runner


@dataclass(frozen=True)
class ConcurrencyConfig:
    """``concurrency``'s config."""

    limit: int = assembler.option(doc="how many runs may be in progress at once", minimum=1)


def make_concurrency(config: ConcurrencyConfig) -> Callable[..., Awaitable[Any]]:
    limit = config.limit
    # One semaphore per event loop run: an app compiled once may run under asyncio in
    # one test and trio in the next, and a semaphore belongs to the loop that made it.
    slots: RunVar[anyio.Semaphore] = RunVar(f"assemble.concurrency.{id(config)}")

    async def concurrency(call: runner.TaskCall, config: Any) -> Any:
        try:
            sem = slots.get()
        except LookupError:
            sem = anyio.Semaphore(limit, fast_acquire=True)
            slots.set(sem)
        async with sem:
            return await call.next()

    return concurrency


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="concurrency",
            kind="middleware",
            config=ConcurrencyConfig,
            factory=make_concurrency,
            description="at most `limit` runs of the task at once; others wait",
        )
    ]
