from __future__ import annotations

import inspect
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import anyio

from ._definitions import Definition, Resource
from ._runtime import Runtime, run
from .errors import RunnerError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve(
    app: Resource,
    *,
    overrides: Sequence[Definition] = (),
    drain_timeout: float | None = 30.0,
    on_ready: Callable[[Runtime], Any] | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``app`` until SIGINT or SIGTERM, then shut down gracefully; return an exit code.

    0 after a clean shutdown (also when a signal interrupts startup and the rollback is
    clean); 1 when startup failed, a disposer failed or the drain ran out of time. A
    second signal stops waiting for in-flight work; disposers still run. Problems are
    printed to ``stderr`` with their code and hint, without a traceback.
    """
    err = stderr if stderr is not None else sys.stderr
    stop = anyio.Event()
    holder: list[Runtime] = []
    failures: list[Exception] = []

    async def watch(signals: Any, startup: anyio.CancelScope) -> None:
        async for _ in signals:
            if not stop.is_set():
                stop.set()
                if not holder:
                    startup.cancel()
            elif holder:
                holder[0].abandon_drain()

    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with anyio.create_task_group() as tg:
            startup = anyio.CancelScope()
            tg.start_soon(watch, signals, startup)
            try:
                with startup:
                    async with run(app, overrides=overrides, drain_timeout=drain_timeout) as rt:
                        holder.append(rt)
                        if on_ready is not None:
                            ready = on_ready(rt)
                            if inspect.isawaitable(ready):
                                await ready
                        await stop.wait()
            except Exception as failure:  # reported below, outside the task group
                failures.append(failure)
            finally:
                tg.cancel_scope.cancel()
    for problem in failures:
        report(problem, err)
    return 1 if failures else 0


def main(
    app: Resource,
    *,
    overrides: Sequence[Definition] = (),
    drain_timeout: float | None = 30.0,
    backend: str = "asyncio",
) -> int:
    """Blocking entry point: ``sys.exit(runner.main(app))``. See :func:`serve`."""
    return anyio.run(
        lambda: serve(app, overrides=overrides, drain_timeout=drain_timeout), backend=backend
    )


def report(exc: BaseException, out: TextIO) -> None:
    """Print ``exc`` (and the members of a group) as ``error[code]: message`` lines."""
    for line in describe(exc):
        print(line, file=out)


def describe(exc: BaseException, indent: str = "") -> list[str]:
    """``exc`` as readable lines: code, message, hint and notes; groups expanded."""
    code = exc.code if isinstance(exc, RunnerError) else type(exc).__name__
    lines = [f"{indent}error[{code}]: {_message(exc)}"]
    hint = getattr(exc, "hint", "")
    if hint:
        lines.append(f"{indent}  hint: {hint}")
    lines += [f"{indent}  note: {n}" for n in getattr(exc, "__notes__", ())]
    for sub in exc.exceptions if isinstance(exc, BaseExceptionGroup) else ():
        lines += describe(sub, indent + "  ")
    return lines


def _message(exc: BaseException) -> str:
    if isinstance(exc, RunnerError):
        return exc.message
    if isinstance(exc, BaseExceptionGroup):
        return exc.message
    return str(exc) or type(exc).__name__
