"""Sync callables in worker threads, with abandoned threads counted against the bound."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import anyio
from anyio import to_thread

#: How many threads sync tasks and hooks may occupy at once (anyio's default, too).
SYNC_THREADS = 40

_PENDING, _RUNNING, _ABANDONED, _DONE = range(4)

_abandoned = [0]  # threads still running a sync callable whose caller gave up
_abandoned_lock = threading.Lock()


def abandoned_threads() -> int:
    """How many worker threads still run a sync task or hook whose caller gave up.

    A process about to exit need not wait for them (``assemble`` does not).
    """
    return _abandoned[0]


def _count(delta: int) -> None:
    with _abandoned_lock:
        _abandoned[0] += delta


class ThreadSlots:
    """Runs sync callables in worker threads; at most ``total`` threads are theirs.

    A cancelled caller (a timeout) is released at once, but Python cannot stop the
    thread: it keeps its slot until it really ends, so a task that hangs cannot make
    the process start thread after thread. Create it inside the event loop.
    """

    def __init__(self, total: int = SYNC_THREADS) -> None:
        self.limiter = anyio.CapacityLimiter(total)
        self._soon = _scheduler()

    async def run(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        token = object()
        await self.limiter.acquire_on_behalf_of(token)
        lock, state = threading.Lock(), [_PENDING]

        def work() -> Any:
            with lock:
                if state[0] != _PENDING:  # the caller left before the thread began
                    return None
                state[0] = _RUNNING
            try:
                return fn(arg)
            finally:
                with lock:
                    abandoned, state[0] = state[0] == _ABANDONED, _DONE
                if abandoned:  # nobody awaits this thread: give its slot back now
                    _count(-1)
                    self._soon(self.limiter.release_on_behalf_of, token)

        try:
            result = await to_thread.run_sync(work, abandon_on_cancel=True)
        except BaseException:
            with lock:
                running = state[0] == _RUNNING
                state[0] = _ABANDONED if running else _DONE
                if running:
                    _count(1)
            if not running:  # it failed, or never started: the slot is free
                self.limiter.release_on_behalf_of(token)
            raise
        self.limiter.release_on_behalf_of(token)
        return result


def _scheduler() -> Callable[..., None]:
    """Schedule a callback on this event loop from any thread, without blocking it."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio, the other backend anyio runs on
        import trio

        trio_token = trio.lowlevel.current_trio_token()

        def trio_soon(fn: Callable[..., Any], *args: Any) -> None:
            with contextlib.suppress(trio.RunFinishedError):  # the app is gone
                trio_token.run_sync_soon(fn, *args)

        return trio_soon

    def asyncio_soon(fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed, the limiter with it
            loop.call_soon_threadsafe(fn, *args)

    return asyncio_soon
