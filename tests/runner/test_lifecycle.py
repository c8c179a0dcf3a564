"""Resources: init order and concurrency, rollback, reverse disposal, generator forms."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import runner
from runner import Resource, Task
from runner.errors import DisposeError, InvalidDefinitionError, ResourceInitError

pytestmark = pytest.mark.anyio


def recorder(log: list[Any], name: str, *, delay: float = 0, fail: bool = False) -> Resource:
    async def init(config: Any, **deps: Any) -> str:
        log.append(("init+", name))
        await anyio.sleep(delay)
        if fail:
            raise RuntimeError(f"{name} broke")
        log.append(("init", name))
        return name

    async def dispose(value: str) -> None:
        log.append(("dispose", value))

    return Resource(name, init=init, dispose=dispose)


def app_of(*defs: runner.Definition) -> Resource:
    return Resource("app", register=defs)


async def test_resources_init_after_their_dependencies_and_get_their_values() -> None:
    seen: dict[str, str] = {}

    async def make_repo(config: Any, db: str, cache: str) -> str:
        seen.update(db=db, cache=cache)
        return "repo"

    log: list[Any] = []
    db, cache = recorder(log, "db"), recorder(log, "cache")
    repo = Resource("repo", init=make_repo, dependencies={"db": db, "cache": "cache"})
    async with runner.run(app_of(repo, db, cache)) as rt:
        assert rt.resource("repo") == "repo"
        assert rt.resource(db) == "db"
    assert seen == {"db": "db", "cache": "cache"}


async def test_independent_resources_initialise_concurrently() -> None:
    log: list[Any] = []
    a, b, c = (recorder(log, n, delay=0.05) for n in "abc")
    with anyio.fail_after(5):
        async with runner.run(app_of(a, b, c)):
            pass
    starts = [i for i, (what, _) in enumerate(log) if what == "init+"]
    assert starts == [0, 1, 2], "all three started before any finished"


async def test_dependants_wait_for_every_dependency_even_when_they_are_slow() -> None:
    log: list[Any] = []
    slow = recorder(log, "slow", delay=0.05)
    fast = recorder(log, "fast")

    async def top_init(config: Any, slow: str, fast: str) -> str:
        log.append(("init", "top"))
        return "top"

    top = Resource("top", init=top_init, dependencies={"slow": slow, "fast": fast})
    async with runner.run(app_of(top, slow, fast)):
        assert log.index(("init", "top")) > log.index(("init", "slow"))


async def test_disposal_runs_in_reverse_dependency_order() -> None:
    log: list[Any] = []

    def chain(name: str, dep: str | None) -> Resource:
        async def init(config: Any, **deps: Any) -> str:
            return name

        async def dispose(value: str) -> None:
            log.append(value)

        return Resource(name, init=init, dispose=dispose, dependencies={"d": dep} if dep else {})

    app = app_of(chain("c", "b"), chain("b", "a"), chain("a", None))
    async with runner.run(app):
        pass
    assert log == ["c", "b", "a"]


async def test_every_disposer_runs_when_some_fail_and_failures_come_together() -> None:
    log: list[str] = []

    def res(name: str, fail: bool, dep: str | None = None) -> Resource:
        def dispose(value: Any) -> None:
            log.append(name)
            if fail:
                raise OSError(f"{name} could not close")

        return Resource(
            name,
            init=lambda config, **d: name,
            dispose=dispose,
            dependencies={"d": dep} if dep else {},
        )

    app = app_of(res("a", True), res("b", False, "a"), res("c", True, "b"))
    with pytest.raises(DisposeError) as info:
        async with runner.run(app):
            pass
    assert log == ["c", "b", "a"]
    errors = info.value.exceptions
    assert [str(e) for e in errors] == ["c could not close", "a could not close"]
    assert "while disposing resource 'c'" in errors[0].__notes__
    assert info.value.code == "runner.dispose"


async def test_init_failure_rolls_back_exactly_what_was_initialised() -> None:
    log: list[Any] = []
    ok1 = recorder(log, "ok1")
    ok2 = recorder(log, "ok2")
    broken = Resource(
        "broken",
        init=recorder(log, "broken", fail=True).init,
        dependencies={"a": ok1},
    )
    never = recorder(log, "never")
    never = runner.testing.replace(never, dependencies={"b": broken})
    with pytest.raises(ResourceInitError) as info:
        async with runner.run(app_of(ok1, ok2, broken, never)):
            pytest.fail("the body must not run")
    disposed = sorted(v for what, v in log if what == "dispose")
    assert disposed == ["ok1", "ok2"]
    assert ("init+", "never") not in log
    assert info.value.id == "broken"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "broken broke" in str(info.value)


async def test_concurrent_init_failures_are_all_reported() -> None:
    log: list[Any] = []
    app = app_of(recorder(log, "x", fail=True), recorder(log, "y", fail=True), recorder(log, "z"))
    with pytest.raises(ExceptionGroup) as info:
        async with runner.run(app):
            pass
    assert sorted(e.id for e in info.value.exceptions if isinstance(e, ResourceInitError)) == [
        "x",
        "y",
    ]
    assert ("dispose", "z") in log


async def test_async_generator_resource_disposes_after_yield() -> None:
    log: list[str] = []

    async def conn(config: Any) -> Any:
        log.append("open")
        yield {"url": config["url"]}
        log.append("close")

    res = Resource("conn", init=conn, config={"url": "x://"})
    async with runner.run(app_of(res)) as rt:
        assert rt.resource("conn") == {"url": "x://"}
        assert log == ["open"]
    assert log == ["open", "close"]


async def test_generator_resource_may_hold_a_cancel_scope_across_its_lifetime() -> None:
    log: list[str] = []

    async def server(config: Any) -> Any:
        async with anyio.create_task_group() as tg:

            async def tick() -> None:
                log.append("serving")
                await anyio.sleep_forever()

            tg.start_soon(tick)
            yield "server"
            tg.cancel_scope.cancel()
        log.append("stopped")

    async with runner.run(app_of(Resource("server", init=server))):
        await anyio.sleep(0.01)
    assert log == ["serving", "stopped"]


async def test_sync_generator_and_sync_function_resources() -> None:
    log: list[str] = []

    def gen(config: Any) -> Any:
        yield "g"
        log.append("gen closed")

    res = [
        Resource("g", init=gen),
        Resource("f", init=lambda config: "f", dispose=lambda v: log.append(f"{v} disposed")),
        Resource("grouping"),
    ]
    async with runner.run(app_of(*res)) as rt:
        assert (rt.resource("g"), rt.resource("f"), rt.resource("grouping")) == ("g", "f", None)
    assert sorted(log) == ["f disposed", "gen closed"]


@pytest.mark.parametrize("times", [0, 2])
async def test_generator_must_yield_exactly_once(times: int) -> None:
    async def gen(config: Any) -> Any:
        for i in range(times):
            yield i

    app = app_of(Resource("g", init=gen))
    with pytest.raises((ResourceInitError, DisposeError)) as info:
        async with runner.run(app):
            pass
    assert "yield" in str(info.value) or any(
        "yielded more than once" in str(e) for e in getattr(info.value, "exceptions", ())
    )


@pytest.mark.parametrize("times", [0, 2])
async def test_sync_generator_must_yield_exactly_once(times: int) -> None:
    def gen(config: Any) -> Any:
        yield from range(times)

    expected = ResourceInitError if times == 0 else DisposeError
    with pytest.raises(expected):
        async with runner.run(app_of(Resource("g", init=gen))):
            pass


def test_generator_init_with_a_dispose_is_refused() -> None:
    async def gen(config: Any) -> Any:
        yield 1

    with pytest.raises(InvalidDefinitionError, match="drop `dispose`"):
        Resource("g", init=gen, dispose=lambda v: None)


async def test_root_value_and_state() -> None:
    app = Resource("app", init=lambda config: "root value")
    async with runner.run(app) as rt:
        assert rt.value == "root value"
        assert rt.state == "running"
        assert not rt.shutting_down
    assert rt.state == "disposed"


async def test_cancellation_during_startup_rolls_back() -> None:
    log: list[Any] = []
    fast = recorder(log, "fast")
    slow_init: Any = recorder(log, "slow", delay=10).init

    async def cancelled_meanwhile(config: Any, f: str) -> Any:
        # The caller gives up while `slow` initialises: cancelled from here, not after a
        # fixed time, which a stalled loop could let run out while `fast` initialises.
        scope.cancel()
        return await slow_init(config, f=f)

    slow = Resource("slow", init=cancelled_meanwhile, dependencies={"f": fast})
    with anyio.CancelScope() as scope:
        async with runner.run(app_of(fast, slow)):
            pytest.fail("must not start")
    assert scope.cancelled_caught
    assert ("dispose", "fast") in log
    assert ("init", "slow") not in log


async def test_resource_middleware_that_fails_after_init_still_disposes_the_value() -> None:
    log: list[str] = []

    async def breaks_after(call: runner.ResourceCall, config: Any) -> Any:
        await call.next()
        raise RuntimeError("middleware broke")

    mw = runner.ResourceMiddleware("breaks", run=breaks_after)
    res = Resource(
        "r",
        init=lambda config: "v",
        dispose=lambda v: log.append(f"disposed {v}"),
        middleware=[mw],
    )
    with pytest.raises(ResourceInitError):
        async with runner.run(app_of(res, mw)):
            pass
    assert log == ["disposed v"]


async def test_a_task_called_during_init_sees_the_resources_it_needs() -> None:
    async def count(input: Any, store: list[int]) -> int:
        return len(store)

    async def seed(config: Any, count: Any) -> int:
        return int(await count())

    store = Resource("store", init=lambda config: [1, 2, 3])
    app = app_of(
        Resource("seed", init=seed, dependencies={"count": "count"}),
        Task("count", run=count, dependencies={"store": store}),
        store,
    )
    async with runner.run(app) as rt:
        assert rt.resource("seed") == 3


async def test_a_thousand_resources_and_tasks() -> None:
    async def init(config: Any, **deps: Any) -> int:
        return int(config)

    res = [
        Resource(f"r{i}", init=init, config=i, dependencies={"up": f"r{i // 2}"} if i else {})
        for i in range(1000)
    ]
    tasks = [
        Task(f"t{i}", run=lambda input, r: r, dependencies={"r": f"r{i}"}) for i in range(1000)
    ]
    async with runner.run(app_of(*res, *tasks)) as rt:
        assert await rt.run_task("t999") == 999


async def test_a_disposer_failing_during_rollback_is_noted_on_the_init_error() -> None:
    def close(value: Any) -> None:
        raise OSError("close failed")

    first = Resource("first", init=lambda c: 1, dispose=close)

    def broken(config: Any, f: int) -> None:
        raise RuntimeError("init failed")

    with pytest.raises(ResourceInitError) as info:
        async with runner.run(
            app_of(first, Resource("second", init=broken, dependencies={"f": first}))
        ):
            pass
    assert info.value.__notes__ == ["rolling back, the disposer failed: OSError: close failed"]


async def test_a_resource_emitting_to_a_hook_that_needs_itself_gets_a_clear_error() -> None:
    async def announce(config: Any, ready: Any) -> None:
        await ready()

    app = app_of(
        Resource("announcer", init=announce, dependencies={"ready": "ready"}),
        runner.Event("ready"),
        runner.Hook("h", on="ready", run=lambda e, a: None, dependencies={"a": "announcer"}),
    )
    with pytest.raises(ResourceInitError) as info:
        async with runner.run(app):
            pass
    cause = info.value.__cause__
    assert isinstance(cause, runner.errors.HookError)
    assert isinstance(cause.__cause__, runner.errors.ResourceNotReadyError)
    assert "'h' needs resource 'announcer', which is not initialised yet" in str(cause.__cause__)


async def test_dispose_errors_can_be_split_with_except_star() -> None:
    app = app_of(Resource("r", init=lambda c: 1, dispose=lambda v: 1 / 0))
    caught: list[BaseException] = []
    try:
        async with runner.run(app):
            pass
    except* ZeroDivisionError as split:
        caught.append(split)
    (group,) = caught
    assert isinstance(group, DisposeError) and group.hint


def test_a_dispose_without_init_is_refused() -> None:
    with pytest.raises(InvalidDefinitionError, match="no `init`"):
        Resource("r", dispose=print)


async def test_reading_a_disposed_resource_says_it_is_not_ready() -> None:
    async with runner.run(app_of(Resource("r", init=lambda c: 1))) as rt:
        pass
    with pytest.raises(runner.errors.ResourceNotReadyError, match="not initialised"):
        rt.resource("r")


async def test_an_interrupted_startup_whose_rollback_fails_raises_the_failures() -> None:
    def close(value: Any) -> None:
        raise OSError("close failed")

    async def slow(config: Any, f: int) -> None:
        scope.cancel()  # interrupted while `slow` initialises (not after a fixed time)
        await anyio.sleep(10)

    app = app_of(
        Resource("first", init=lambda c: 1, dispose=close),
        Resource("slow", init=slow, dependencies={"f": "first"}),
    )
    with anyio.CancelScope() as scope, pytest.raises(DisposeError, match="interrupted"):
        async with runner.run(app):
            pass


async def test_a_resource_can_serve_from_the_background_once_the_app_is_up() -> None:
    events: list[str] = []

    async def server(config: Any) -> Any:
        rt = runner.current_runtime.use()
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                await rt.wait_running()
                events.append(f"serving ({rt.state})")
                await rt.wait_stopping()
                events.append(f"stopping ({rt.state})")

            tg.start_soon(serve)
            yield "server"
            events.append("disposing")

    async def later(config: Any, s: str) -> str:
        await anyio.sleep(0.01)
        events.append("later resource ready")
        return "db"

    app = Resource(
        "app",
        register=[
            Resource("server", init=server),
            Resource("db", init=later, dependencies={"s": "server"}),
        ],
    )
    async with runner.run(app) as rt:
        assert runner.current_runtime.use() is rt
        with anyio.fail_after(5):  # the serving task wakes (a fixed sleep could be too short)
            while len(events) < 2:
                await anyio.sleep(0.005)
        assert events == ["later resource ready", "serving (running)"]
    # with no work in flight, draining ends at once: the serving task wakes while its
    # resource is disposed, and the resource's task group waits for it
    assert events[2:] == ["disposing", "stopping (disposing)"]
    assert runner.current_runtime.try_use() is None
