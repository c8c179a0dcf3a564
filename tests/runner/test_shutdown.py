"""Shutdown never loses work silently: lockdown, drain, then dispose."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import runner
from runner import Event, Hook, Resource, Task
from runner.errors import DisposeError, DrainTimeoutError, ShuttingDown

pytestmark = pytest.mark.anyio


def app_with(log: list[str], release: anyio.Event | None = None) -> Resource:
    async def slow(input: int, tick: Any, db: str) -> int:
        if release is None:
            await anyio.sleep(10)  # outlives every drain timeout below
        else:
            await release.wait()
        await tick(input)  # nested work of accepted work still goes through
        log.append(f"done {input}")
        return input

    return Resource(
        "app",
        register=[
            Resource("db", init=lambda c: "db", dispose=lambda v: log.append("disposed db")),
            Task("slow", run=slow, dependencies={"tick": "tick", "db": "db"}),
            Task("tick", run=lambda i: i),
            Event("ping"),
            Hook("h", on="ping", run=lambda e: log.append("ping")),
        ],
    )


async def test_accepted_work_completes_before_disposal_and_new_work_is_refused() -> None:
    log: list[str] = []
    refused: list[ShuttingDown] = []
    results: list[int] = []
    # The calls finish when released after shutdown began, not after a fixed time: a
    # stalled loop could let them finish before the checks, or before shutdown.
    release = anyio.Event()
    async with anyio.create_task_group() as tg, runner.run(app_with(log, release)) as rt:

        async def call(i: int) -> None:
            results.append(await rt.run_task("slow", i))

        async def late() -> None:
            while not rt.shutting_down:
                await anyio.sleep(0.005)
            for attempt in (rt.run_task("tick", 1), rt.emit("ping")):
                try:
                    await attempt
                except ShuttingDown as exc:
                    refused.append(exc)
            release.set()  # the accepted calls finish now, during the drain

        for i in range(5):
            tg.start_soon(call, i)
        tg.start_soon(late)
        with anyio.fail_after(5):
            while rt.in_flight < 5:
                await anyio.sleep(0.005)
        assert rt.in_flight == 5
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert log[-1] == "disposed db" and len(log) == 6
    assert len(refused) == 2 and all(
        isinstance(e, ShuttingDown) and e.http_status == 503 for e in refused
    )
    assert "refused task 'tick'" in str(refused[0]) and "emit of 'ping'" in str(refused[1])
    assert rt.state == "disposed"


async def test_a_drain_that_runs_out_of_time_is_reported_and_disposal_still_runs() -> None:
    log: list[str] = []
    async with anyio.create_task_group() as tg:
        with pytest.raises(DisposeError) as info:
            async with runner.run(app_with(log), drain_timeout=0.05) as rt:
                tg.start_soon(rt.run_task, "slow", 1)
                with anyio.fail_after(5):  # in flight before shutdown (not a fixed sleep)
                    while rt.in_flight == 0:
                        await anyio.sleep(0.005)
        tg.cancel_scope.cancel()
    (problem,) = info.value.exceptions
    assert isinstance(problem, DrainTimeoutError) and problem.pending == 1
    assert log == ["disposed db"]


async def test_abandon_drain_stops_waiting() -> None:
    log: list[str] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            with pytest.raises(DisposeError):
                async with runner.run(app_with(log), drain_timeout=None) as rt:
                    tg.start_soon(rt.run_task, "slow", 1)

                    async def force() -> None:
                        while rt.state != "draining":
                            await anyio.sleep(0.005)
                        rt.abandon_drain()

                    tg.start_soon(force)
                    while rt.in_flight == 0:  # in flight before shutdown (not a fixed sleep)
                        await anyio.sleep(0.005)
            tg.cancel_scope.cancel()
    assert log == ["disposed db"]


async def test_abandon_drain_asked_before_the_drain_began_is_remembered() -> None:
    # A second signal can come before the drain starts (while on_ready runs, say): it
    # must not be lost, or a quick double Ctrl+C waits out the whole drain (or forever).
    log: list[str] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            with pytest.raises(DisposeError) as err:
                async with runner.run(app_with(log), drain_timeout=None) as rt:
                    tg.start_soon(rt.run_task, "slow", 1)
                    while rt.in_flight == 0:
                        await anyio.sleep(0.005)
                    rt.abandon_drain()
                    assert rt.state == "running"
            tg.cancel_scope.cancel()
    assert log == ["disposed db"]
    [problem] = err.value.exceptions
    assert isinstance(problem, DrainTimeoutError) and problem.pending == 1
    assert problem.hint.startswith("the wait was abandoned (a second signal)")


async def test_a_cancelled_body_still_disposes_resources_that_await() -> None:
    log: list[str] = []

    async def conn(config: Any) -> Any:
        yield "conn"
        await anyio.sleep(0.01)
        log.append("closed")

    # cancelled once the body runs, not after a fixed time a stalled loop could let run
    # out during startup
    with anyio.CancelScope() as scope:
        async with runner.run(Resource("app", register=[Resource("c", init=conn)])):
            scope.cancel()
            await anyio.sleep_forever()
    assert log == ["closed"]


async def test_calls_made_during_init_are_accepted() -> None:
    async def seed(config: Any, tick: Any) -> Any:
        return await tick(3)

    app = Resource(
        "app",
        register=[
            Task("tick", run=lambda i: i),
            Resource("seed", init=seed, dependencies={"tick": "tick"}),
        ],
    )
    async with runner.run(app) as rt:
        assert rt.resource("seed") == 3
        assert rt.in_flight == 0


async def test_disposal_completes_when_a_generator_resource_cancelled_its_own_scope() -> None:
    log: list[str] = []

    async def supervisor(config: Any) -> Any:
        async with anyio.create_task_group() as tg:

            async def crash() -> None:
                await anyio.sleep(0.01)
                raise RuntimeError("background task died")

            tg.start_soon(crash)
            yield "supervisor"

    async def close_slowly(value: Any) -> None:
        await anyio.sleep(0.01)  # would be cancelled inside the supervisor's scope
        log.append("client closed")

    app = Resource(
        "app",
        register=[
            Resource("supervisor", init=supervisor),
            Resource(
                "client",
                init=lambda c, s: "client",
                dispose=close_slowly,
                dependencies={"s": "supervisor"},
            ),
        ],
    )
    with anyio.fail_after(5), pytest.raises(DisposeError) as info:
        async with runner.run(app):
            await anyio.sleep(1)  # cancelled when the background task dies
    assert log == ["client closed"]
    (problem,) = info.value.exceptions
    assert "background task died" in repr(problem)


async def test_work_accepted_before_shutdown_may_run_tasks_after_it_began() -> None:
    async def echo(input: Any) -> Any:
        return input

    app = Resource("app", register=[Task("echo", run=echo)])
    results: list[Any] = []
    release = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def edge(rt: runner.Runtime) -> None:
            async with rt.accepted("a request"):
                await release.wait()  # still reading its body when shutdown begins
                results.append(await rt.run_task("echo", "late but accepted"))

        async with runner.run(app) as rt:
            tg.start_soon(edge, rt)
            with anyio.fail_after(5):  # accepted before shutdown (not a fixed sleep)
                while rt.in_flight == 0:
                    await anyio.sleep(0.005)

            async def release_soon() -> None:
                await rt.wait_stopping()
                with pytest.raises(ShuttingDown):  # new work is refused meanwhile
                    async with rt.accepted("another request"):
                        pass
                release.set()

            tg.start_soon(release_soon)
        assert rt.state == "disposed"
    assert results == ["late but accepted"]  # the drain waited for it
