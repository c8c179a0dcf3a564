"""``timeout``: the task is cancelled for real at its deadline, and the caller released."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import assembler
import runner
from runner.errors import TaskTimeoutError


@dataclass(frozen=True)
class TimeoutConfig:
    """``timeout``'s config."""

    after: assembler.Duration = assembler.option(
        doc="the deadline of one call (e.g. 500ms, 5s); it must be above 0"
    )


def _check(config: Any, report: assembler.ConfigReport) -> None:
    if assembler.duration(config["after"]) <= 0:
        report("a timeout must be above 0", at=("after",), hint="e.g. `after: 500ms`")


class _Call:
    """One call in flight under a timeout: its task and whether the deadline passed."""

    __slots__ = ("deadline", "done", "expired", "task")

    def __init__(self, deadline: float, task: asyncio.Task[Any]) -> None:
        self.deadline, self.task = deadline, task
        self.done = self.expired = False


class _Deadlines:
    """The calls of one ``timeout`` use on one asyncio loop, and ONE timer for them all.

    ``after`` is the same for every call, so deadlines arrive in order: a deque is the
    priority queue, and only its head needs a timer. A timer per call (what
    ``asyncio.timeout`` and cancel scopes arm) costs more than the rest of the call.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, after: float) -> None:
        self.loop, self.after = loop, after
        self.calls: deque[_Call] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def start(self, task: asyncio.Task[Any]) -> _Call:
        call = _Call(self.loop.time() + self.after, task)
        self.calls.append(call)
        if self.timer is None:
            self.timer = self.loop.call_at(call.deadline, self.fire)
        return call

    def finish(self, call: _Call) -> None:
        call.done = True
        calls = self.calls
        while calls and calls[0].done:  # calls mostly end in order: the deque stays short
            calls.popleft()
        # The timer stays armed when no call is left: arming one costs more than the
        # rest of a call, and when it fires on an empty deque it just lapses.

    def fire(self) -> None:
        self.timer = None
        now, calls = self.loop.time(), self.calls
        while calls:
            head = calls[0]
            if head.done:
                calls.popleft()
            elif head.deadline <= now:
                calls.popleft()
                head.expired = True
                head.task.cancel()  # delivered at the task's pending await
            else:
                self.timer = self.loop.call_at(head.deadline, self.fire)
                return


def make_timeout(config: TimeoutConfig) -> Callable[..., Awaitable[Any]]:
    after = config.after
    loops: list[_Deadlines] = []  # the asyncio loop this use last ran on (usually one)

    async def timeout(call: runner.TaskCall, config: Any) -> Any:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio, so trio (the other backend): a cancel scope
            return await _scoped(call, after)
        if not loops or loops[0].loop is not loop:
            loops[:] = [_Deadlines(loop, after)]
        deadlines = loops[0]
        task = asyncio.current_task()
        assert task is not None
        entry = deadlines.start(task)
        try:
            result = await call.next()
        except asyncio.CancelledError:
            # Ours only if the deadline passed and no other cancel (an outer timeout,
            # a shutdown, the caller's own scope) is pending: then it is a timeout.
            if entry.expired and task.uncancel() == 0:
                raise TaskTimeoutError(call.task.id, after) from None
            raise
        except BaseException as exc:
            if entry.expired:  # the task turned our cancel into another error
                task.uncancel()  # leave no cancel request behind for the caller
                raise TaskTimeoutError(call.task.id, after) from exc
            raise
        finally:
            deadlines.finish(entry)
        if entry.expired:  # the task swallowed the cancel: still too late
            task.uncancel()
            raise TaskTimeoutError(call.task.id, after)
        return result

    return timeout


async def _scoped(call: runner.TaskCall, after: float) -> Any:
    import trio

    # The task runs inside the scope: at the deadline it is cancelled at its next
    # await, so nothing it would do after that point happens. A sync task runs in a
    # worker thread the runtime abandons on cancel: the caller is released at once.
    # On trio, anyio's scope is a trio scope with a wrapper; the scope itself costs less.
    with trio.move_on_after(after) as scope:
        result = await call.next()
    if scope.cancel_called:  # cancelled, or it swallowed the cancel: too late either way
        raise TaskTimeoutError(call.task.id, after)
    return result


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="timeout",
            kind="middleware",
            config=TimeoutConfig,
            factory=make_timeout,
            check=_check,
            description="cancels a task past its deadline; TaskTimeoutError (504)",
        )
    ]
