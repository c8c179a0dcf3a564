"""Async contexts: provide/use, and their flow into tasks, hooks, middleware, task groups."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

import runner
from runner import AsyncContext, Event, Hook, Resource, Task, TaskMiddleware
from runner.errors import ContextNotProvidedError

pytestmark = pytest.mark.anyio

tenant = AsyncContext("tenant")


async def test_use_outside_provide_is_a_clear_error() -> None:
    with pytest.raises(ContextNotProvidedError, match="'tenant' has no value") as info:
        tenant.use()
    assert "provide" in info.value.hint
    assert tenant.try_use("fallback") == "fallback"


async def test_provide_works_as_sync_and_async_context_manager_and_nests() -> None:
    with tenant.provide("a") as value:
        assert value == "a"
        async with tenant.provide("b"):
            assert tenant.use() == "b"
        assert tenant.use() == "a"
    assert tenant.try_use() is None


async def test_context_flows_into_tasks_hooks_middleware_and_task_group_children() -> None:
    seen: dict[str, Any] = {}

    async def mw(call: runner.TaskCall, config: Any) -> Any:
        seen["middleware"] = tenant.use()
        return await call.next()

    async def child(name: str) -> None:
        await anyio.lowlevel.checkpoint()
        seen[name] = tenant.use()

    async def work(input: Any, ctx: AsyncContext, done: Any) -> None:
        seen["task"] = ctx.use()
        async with anyio.create_task_group() as tg:
            tg.start_soon(child, "child1")
            tg.start_soon(child, "child2")
        await done()

    app = Resource(
        "app",
        register=[
            tenant,
            Event("done"),
            TaskMiddleware("mw", run=mw, everywhere=True),
            Hook("h", on="done", run=lambda e: seen.__setitem__("hook", tenant.use())),
            Task("work", run=work, dependencies={"ctx": tenant, "done": "done"}),
        ],
    )
    async with runner.run(app) as rt:
        with tenant.provide("acme"):
            await rt.run_task("work")
        with pytest.raises(ContextNotProvidedError):
            await rt.run_task("work")
    assert seen == dict.fromkeys(("middleware", "task", "child1", "child2", "hook"), "acme")


async def test_concurrent_provides_do_not_leak_into_each_other() -> None:
    async def read(input: Any) -> Any:
        await anyio.sleep(0.01)
        return tenant.use()

    results: dict[str, Any] = {}
    async with runner.run(Resource("app", register=[tenant, Task("read", run=read)])) as rt:

        async def as_tenant(name: str) -> None:
            with tenant.provide(name):
                results[name] = await rt.run_task("read")

        async with anyio.create_task_group() as tg:
            for name in ("a", "b", "c"):
                tg.start_soon(as_tenant, name)
    assert results == {"a": "a", "b": "b", "c": "c"}
