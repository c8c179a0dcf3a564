"""The middleware onion: order, everywhere, config, short-circuit, resource middleware."""

from __future__ import annotations

from typing import Any

import pytest

import runner
from runner import Resource, ResourceMiddleware, Task, TaskMiddleware
from runner.errors import InvalidDefinitionError, MissingDependencyError, ValidationError

pytestmark = pytest.mark.anyio


def tracer(log: list[str], name: str, **kw: Any) -> TaskMiddleware:
    async def run(call: runner.TaskCall, config: Any) -> Any:
        log.append(f"{name}>")
        result = await call.next(call.input)
        log.append(f"<{name}")
        return result

    return TaskMiddleware(name, run=run, **kw)


async def test_listed_order_is_outer_to_inner_and_everywhere_wraps_outside() -> None:
    log: list[str] = []
    a, b = tracer(log, "a"), tracer(log, "b")
    g1, g2 = tracer(log, "g1", everywhere=True), tracer(log, "g2", everywhere=True)

    async def work(input: Any) -> str:
        log.append("task")
        return "ok"

    app = Resource("app", register=[g1, a, b, g2, Task("t", run=work, middleware=[a, b])])
    async with runner.run(app) as rt:
        assert await rt.run_task("t") == "ok"
    assert log == ["g1>", "g2>", "a>", "b>", "task", "<b", "<a", "<g2", "<g1"]


async def test_everywhere_predicate_and_local_listing_is_not_doubled() -> None:
    log: list[str] = []
    g = tracer(log, "g", everywhere=lambda task: task.id.startswith("api."))
    app = Resource(
        "app",
        register=[
            g,
            Task("api.one", run=lambda i: None),
            Task("api.two", run=lambda i: None, middleware=[g]),
            Task("internal", run=lambda i: None),
        ],
    )
    async with runner.run(app) as rt:
        for t in ("api.one", "api.two", "internal"):
            await rt.run_task(t)
    assert log == ["g>", "<g", "g>", "<g"]


async def test_a_global_middleware_does_not_wrap_the_tasks_it_depends_on() -> None:
    log: list[str] = []

    async def audit(call: runner.TaskCall, config: Any, write: Any) -> Any:
        await write(call.task.id)
        return await call.next()

    async def write(input: str) -> None:
        log.append(f"audit {input}")

    app = Resource(
        "app",
        register=[
            TaskMiddleware("audit", run=audit, everywhere=True, dependencies={"write": "write"}),
            Task("write", run=write),
            Task("work", run=lambda i: "worked"),
        ],
    )
    async with runner.run(app) as rt:
        assert await rt.run_task("work") == "worked"
    assert log == ["audit work"]


async def test_middleware_sees_the_task_and_config_and_may_change_input_and_result() -> None:
    async def add(call: runner.TaskCall, config: Any) -> Any:
        assert call.task.id == "echo"
        return [await call.next(call.input + config["n"]), "after"]

    mw = TaskMiddleware("add", run=add, config={"n": 1}, config_schema={"type": "object"})

    async def echo(input: int) -> int:
        return input

    app = Resource(
        "app",
        register=[
            mw,
            Task("echo", run=echo, middleware=[mw.with_({"n": 100})]),
            Task("e2", run=echo, middleware=["add"]),
        ],
    )
    async with runner.run(app) as rt:
        assert await rt.run_task("echo", 1) == [101, "after"]
        with pytest.raises(AssertionError):
            await rt.run_task("e2", 1)


async def test_middleware_may_short_circuit() -> None:
    calls: list[Any] = []

    async def cached(call: runner.TaskCall, config: Any) -> Any:
        return "from cache"

    app = Resource(
        "app",
        register=[
            TaskMiddleware("cache", run=cached),
            Task("t", run=lambda i: calls.append(i), middleware=["cache"]),
        ],
    )
    async with runner.run(app) as rt:
        assert await rt.run_task("t", 1) == "from cache"
    assert calls == []


async def test_middleware_dependencies_are_injected() -> None:
    async def tag(call: runner.TaskCall, config: Any, prefix: str) -> Any:
        return prefix + await call.next()

    app = Resource(
        "app",
        register=[
            Resource("prefix", init=lambda c: ">> "),
            TaskMiddleware("tag", run=tag, dependencies={"prefix": "prefix"}),
            Task("t", run=lambda i: "x", middleware=["tag"]),
        ],
    )
    async with runner.run(app) as rt:
        assert await rt.run_task("t") == ">> x"


def test_with_validates_config_now() -> None:
    async def run(call: Any, config: Any) -> Any:
        return await call.next()

    mw = TaskMiddleware("limit", run=run, config_schema={"type": "object", "required": ["max"]})
    with pytest.raises(ValidationError, match="max: is required"):
        mw.with_({})
    assert mw.with_({"max": 3}).config == {"max": 3}


async def test_a_default_config_that_fails_its_schema_is_caught_before_init() -> None:
    async def run(call: Any, config: Any) -> Any:
        return await call.next()

    inits: list[str] = []
    mw = TaskMiddleware("limit", run=run, config_schema={"type": "object", "required": ["max"]})
    app = Resource(
        "app",
        register=[
            mw,
            Task("t", run=lambda i: i, middleware=[mw]),
            Resource("r", init=lambda c: inits.append("r")),
        ],
    )
    with pytest.raises(ValidationError, match=r"invalid config for 'limit': .*None is not of type"):
        async with runner.run(app):
            pass
    assert inits == []


def test_middleware_must_be_async() -> None:
    with pytest.raises(InvalidDefinitionError, match="async"):
        TaskMiddleware("m", run=lambda call, config: call.next())


async def test_listing_an_unregistered_or_wrong_kind_middleware_is_an_error() -> None:
    mw = tracer([], "m")
    with pytest.raises(MissingDependencyError, match="'t' depends on 'm'"):
        async with runner.run(
            Resource("app", register=[Task("t", run=lambda i: i, middleware=[mw])])
        ):
            pass
    rmw = ResourceMiddleware("rm", run=mw.run)
    with pytest.raises(InvalidDefinitionError, match="lists resource middleware 'rm'"):
        async with runner.run(
            Resource("app", register=[rmw, Task("t", run=lambda i: i, middleware=[rmw])])
        ):
            pass


async def test_resource_middleware_wraps_init_and_may_change_config_and_value() -> None:
    log: list[str] = []

    async def around(call: runner.ResourceCall, config: Any) -> Any:
        log.append(f"before {call.resource.id} {call.config}")
        value = await call.next({"url": call.config["url"] + "?pool=2"})
        return f"[{value}]"

    def connect(config: Any) -> str:
        return str(config["url"])

    mw = ResourceMiddleware("around", run=around, everywhere=lambda r: r.id != "app")
    app = Resource("app", register=[mw, Resource("db", init=connect, config={"url": "pg://"})])
    async with runner.run(app) as rt:
        assert rt.resource("db") == "[pg://?pool=2]"
    assert log == ["before db {'url': 'pg://'}"]


def test_bad_middleware_entries_are_refused() -> None:
    with pytest.raises(InvalidDefinitionError, match="middleware entry"):
        Task("t", run=lambda i: i, middleware=[42])
    with pytest.raises(InvalidDefinitionError, match="everywhere"):
        TaskMiddleware("m", run=tracer([], "x").run, everywhere="yes")  # type: ignore[arg-type]
