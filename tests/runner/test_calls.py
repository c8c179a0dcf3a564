"""Task calls and what is injected for each kind of dependency."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

import runner
from runner import AsyncContext, Event, Hook, Resource, Task
from runner.errors import NotRegisteredError, TaskNotRoutedError

pytestmark = pytest.mark.anyio


async def test_each_dependency_kind_is_injected_as_documented() -> None:
    got: dict[str, Any] = {}
    heard: list[Any] = []

    async def double(input: int) -> int:
        return input * 2

    async def probe(input: Any, db: Any, double: Any, ping: Any, tenant: Any, absent: Any) -> str:
        got.update(db=db, doubled=await double(21), tenant=tenant, absent=absent)
        await ping("pong")
        return "done"

    tenant = AsyncContext("tenant")
    app = Resource(
        "app",
        register=[
            Resource("db", init=lambda config: {"db": True}),
            Task("double", run=double),
            Event("ping"),
            tenant,
            Hook("on_ping", on="ping", run=lambda e: heard.append(e.data)),
            Task(
                "probe",
                run=probe,
                dependencies={
                    "db": "db",
                    "double": "double",
                    "ping": "ping",
                    "tenant": tenant,
                    "absent": runner.optional("analytics"),
                },
            ),
        ],
    )
    async with runner.run(app) as rt:
        assert await rt.run_task("probe") == "done"
    assert got == {"db": {"db": True}, "doubled": 42, "tenant": tenant, "absent": None}
    assert heard == ["pong"]


async def test_an_optional_dependency_that_is_registered_is_injected() -> None:
    async def probe(input: Any, db: Any) -> Any:
        return db

    db = Resource("db", init=lambda config: "real")
    app = Resource(
        "app", register=[db, Task("p", run=probe, dependencies={"db": runner.optional(db)})]
    )
    async with runner.run(app) as rt:
        assert await rt.run_task("p") == "real"


async def test_sync_task_callables_work_and_input_defaults_to_none() -> None:
    def add(input: Any, offset: int) -> Any:
        return (input or 0) + offset

    app = Resource(
        "app",
        register=[
            Resource("offset", init=lambda c: 10),
            Task("add", run=add, dependencies={"offset": "offset"}),
        ],
    )
    async with runner.run(app) as rt:
        assert await rt.run_task("add", 5) == 15
        assert await rt.run_task("add") == 10


async def test_tasks_are_called_by_definition_or_id() -> None:
    async def echo(input: Any) -> Any:
        return input

    task = Task("echo", run=echo)
    async with runner.run(Resource("app", register=[task])) as rt:
        assert await rt.run_task(task, 1) == 1
        assert await rt.run_task("echo", 2) == 2


async def test_unknown_ids_get_a_suggestion() -> None:
    async with runner.run(
        Resource("app", register=[Task("get_user", run=lambda i: i), Event("created")])
    ) as rt:
        with pytest.raises(NotRegisteredError, match="did you mean 'get_user'") as info:
            await rt.run_task("get_usr")
        assert info.value.code == "runner.not_registered"
        with pytest.raises(NotRegisteredError, match="no event"):
            await rt.emit("nope")
        with pytest.raises(NotRegisteredError, match="no resource"):
            rt.resource("get_user")


async def test_a_remote_placeholder_fails_clearly_when_nothing_routes_it() -> None:
    async with runner.run(Resource("app", register=[Task("app.tasks.add", remote=True)])) as rt:
        with pytest.raises(TaskNotRoutedError, match="remote-only") as info:
            await rt.run_task("app.tasks.add", {"a": 1})
    assert info.value.http_status == 503


async def test_task_errors_reach_the_caller_unchanged() -> None:
    async def boom(input: Any) -> None:
        raise KeyError("user 7")

    async with runner.run(Resource("app", register=[Task("boom", run=boom)])) as rt:
        with pytest.raises(KeyError, match="user 7"):
            await rt.run_task("boom")


async def test_tasks_run_concurrently_from_a_task_group() -> None:
    async def slow(input: int) -> int:
        await anyio.sleep(0.05)
        return input

    results: list[int] = []
    async with runner.run(Resource("app", register=[Task("slow", run=slow)])) as rt:
        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                for i in range(20):

                    async def one(i: int = i) -> None:
                        results.append(await rt.run_task("slow", i))

                    tg.start_soon(one)
    assert sorted(results) == list(range(20))


async def test_callable_objects_with_async_call_are_async_tasks() -> None:
    class Handler:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        async def __call__(self, input: str) -> str:
            return f"{self.greeting} {input}"

    async with runner.run(Resource("app", register=[Task("h", run=Handler("hi"))])) as rt:
        assert await rt.run_task("h", "ada") == "hi ada"


async def test_sync_tasks_and_hooks_run_in_a_worker_thread_with_the_callers_context() -> None:
    ctx = AsyncContext("tenant")
    seen: dict[str, Any] = {}

    def task(input: Any) -> Any:
        seen["task"] = (threading.get_ident(), ctx.use())
        return input

    def hook(event: Any) -> None:
        seen["hook"] = (threading.get_ident(), ctx.use())

    app = Resource(
        "app",
        register=[ctx, Task("t", run=task), Event("e"), Hook("h", on="e", run=hook)],
    )
    loop_thread = threading.get_ident()
    async with runner.run(app) as rt:
        with ctx.provide("acme"):
            assert await rt.run_task("t", 1) == 1
            await rt.emit("e", None)
    assert seen["task"][1] == seen["hook"][1] == "acme"
    assert seen["task"][0] != loop_thread and seen["hook"][0] != loop_thread


async def test_a_blocking_sync_task_leaves_the_event_loop_free() -> None:
    release = threading.Event()
    ticks: list[int] = []

    def blocking(input: Any) -> str:
        release.wait(5)
        return "done"

    app = Resource("app", register=[Task("block", run=blocking)])
    async with runner.run(app) as rt, anyio.create_task_group() as tg:

        async def run() -> None:
            assert await rt.run_task("block") == "done"

        tg.start_soon(run)
        for i in range(3):  # the loop keeps ticking while the task blocks its thread
            await anyio.sleep(0.01)
            ticks.append(i)
        release.set()
    assert ticks == [0, 1, 2]


def test_a_request_reads_headers_by_any_case() -> None:
    request = runner.Request("r", {"Authorization": "Bearer x", "x-id": "7"})
    assert request.header("authorization") == "Bearer x"
    assert request.header("AUTHORIZATION") == "Bearer x" and request.header("X-Id") == "7"
    assert dict(request.headers) == {"authorization": "Bearer x", "x-id": "7"}
    assert runner.Request("r").header("anything") is None


# -- routing (tunnels) ----------------------------------------------------------------


def _router(routes: dict[str, Any], owner: str = "tunnel") -> Resource:
    """A resource that, like a tunnel client, routes tasks at init."""

    def init(config: Any) -> str:
        rt = runner.current_runtime.use()
        for tid, run in routes.items():
            rt.route(tid, run, owner=owner)
        return owner

    return Resource(f"router_{owner}", init=init)


async def test_a_routed_task_keeps_its_middleware_and_schemas() -> None:
    sent: list[Any] = []

    async def remote(input: Any) -> Any:
        sent.append(input)
        return {"sum": input["a"] + input["b"]}

    async def tag(call: runner.TaskCall, config: Any) -> Any:
        return {**await call.next({**call.input, "b": 2}), "tagged": True}

    app = Resource(
        "app",
        register=[
            runner.TaskMiddleware("tag", run=tag),
            Task(
                "app.tasks.add",
                remote=True,
                middleware=["tag"],
                input_schema={"type": "object", "required": ["a"]},
                result_schema={"type": "object", "required": ["sum"]},
            ),
            _router({"app.tasks.add": remote}),
        ],
    )
    async with runner.run(app) as rt:
        assert await rt.run_task("app.tasks.add", {"a": 1}) == {"sum": 3, "tagged": True}
        with pytest.raises(runner.errors.ValidationError):
            await rt.run_task("app.tasks.add", {"b": 1})
    assert sent == [{"a": 1, "b": 2}]


async def test_a_local_task_routed_elsewhere_does_not_run_here() -> None:
    async def local(input: Any) -> str:
        raise AssertionError("the local run must not be called")

    async def remote(input: Any) -> str:
        return "remote"

    app = Resource("app", register=[Task("t", run=local), _router({"t": remote})])
    async with runner.run(app) as rt:
        assert await rt.run_task("t") == "remote"


async def test_routing_after_a_first_call_takes_effect_on_the_next() -> None:
    async def remote(input: Any) -> str:
        return "routed"

    async with runner.run(Resource("app", register=[Task("t", remote=True)])) as rt:
        with pytest.raises(TaskNotRoutedError):
            await rt.run_task("t")
        rt.route("t", remote, owner="late")
        assert await rt.run_task("t") == "routed"
        rt.route("t", remote, owner="late")  # the same owner again: fine


async def test_a_task_has_one_router() -> None:
    async def remote(input: Any) -> None:
        return None

    async with runner.run(Resource("app", register=[Task("t", remote=True)])) as rt:
        rt.route("t", remote, owner="a")
        with pytest.raises(
            runner.errors.InvalidDefinitionError, match="routed by both 'a' and 'b'"
        ):
            rt.route("t", remote, owner="b")
        with pytest.raises(NotRegisteredError, match="no task with id 'nope'"):
            rt.route("nope", remote, owner="a")


async def test_a_mirrored_event_is_sent_after_its_local_hooks() -> None:
    order: list[str] = []

    async def send(payload: Any) -> None:
        order.append(f"sent {payload}")

    async def failing(payload: Any) -> None:
        raise ConnectionError("remote down")

    app = Resource(
        "app",
        register=[
            Event("e"),
            Event("f"),
            Hook("local", on="e", run=lambda em: order.append(f"local {em.data}")),
        ],
    )
    async with runner.run(app) as rt:
        rt.mirror("e", send)
        await rt.emit("e", 1)
        rt.mirror("f", failing)
        with pytest.raises(ConnectionError, match="remote down"):
            await rt.emit("f")
        with pytest.raises(NotRegisteredError):
            rt.mirror("nope", send)
    assert order == ["local 1", "sent 1"]


async def test_a_diverted_event_is_sent_and_its_hooks_run_on_delivery() -> None:
    heard: list[Any] = []
    sent: list[Any] = []

    async def send(payload: Any) -> None:
        sent.append(payload)

    app = Resource(
        "app",
        register=[
            Event("e", payload_schema={"type": "object", "required": ["n"]}),
            Hook("h", on="e", run=lambda em: heard.append(em.data)),
        ],
    )
    async with runner.run(app) as rt:
        rt.divert("e", send)
        await rt.emit("e", {"n": 1})
        assert (sent, heard) == ([{"n": 1}], [])  # queued, not run here
        with pytest.raises(runner.errors.ValidationError):
            await rt.emit("e", {})  # the payload is still checked before it goes
        await rt.deliver("e", {"n": 2})  # brought back from the queue
        assert heard == [{"n": 2}] and sent == [{"n": 1}]
        with pytest.raises(NotRegisteredError):
            rt.divert("nope", send)
    with pytest.raises(runner.errors.ShuttingDown):
        await rt.deliver("e", {"n": 3})


async def test_delivery_is_drained_on_shutdown() -> None:
    order: list[str] = []
    release = anyio.Event()

    async def slow(emission: Any) -> None:
        # Held until shutdown has begun, not for a fixed time: a stalled loop could
        # outlast a sleep and let the hook finish before the checks below.
        await release.wait()
        order.append("hook")

    async def release_once_draining(rt: runner.Runtime) -> None:
        while not rt.shutting_down:
            await anyio.sleep(0.005)
        await anyio.sleep(0.05)  # disposal would run meanwhile if the drain did not wait
        release.set()

    app = Resource(
        "app",
        register=[
            Event("e"),
            Hook("h", on="e", run=slow),
            Resource("db", init=lambda config: "db", dispose=lambda db: order.append("disposed")),
        ],
    )
    async with anyio.create_task_group() as tg, runner.run(app) as rt:
        tg.start_soon(rt.deliver, "e", None)
        with anyio.fail_after(5):  # the delivery starts (a fixed sleep could be too short)
            while rt.in_flight == 0:
                await anyio.sleep(0.005)
        assert rt.in_flight == 1  # counted as accepted work
        tg.start_soon(release_once_draining, rt)
    assert order == ["hook", "disposed"]  # shutdown waited for it before disposing


async def test_delivery_from_inside_accepted_work_runs_during_the_drain() -> None:
    heard: list[Any] = []

    async def relay(input: Any) -> None:
        rt = runner.current_runtime.use()
        while not rt.shutting_down:  # wait for shutdown, not a time a stall could outlast
            await anyio.sleep(0.005)
        await rt.deliver("e", input)

    app = Resource(
        "app",
        register=[
            Event("e"),
            Hook("h", on="e", run=lambda em: heard.append(em.data)),
            Task("relay", run=relay),
        ],
    )
    async with anyio.create_task_group() as tg, runner.run(app) as rt:
        tg.start_soon(rt.run_task, "relay", {"n": 1})
        with anyio.fail_after(5):  # accepted before shutdown begins
            while rt.in_flight == 0:
                await anyio.sleep(0.005)
    assert heard == [{"n": 1}]


# -- error classifiers: a resource types the failures of its client library ----------


class DriverDown(Exception):
    """What a client library raises when its server is gone (untyped)."""


async def test_a_classifier_types_what_tasks_and_hooks_raise() -> None:
    from runner.errors import HookError, ResourceUnavailable, ValidationError

    seen: list[Exception] = []

    def classify(exc: Exception) -> Exception | None:
        seen.append(exc)
        if isinstance(exc, DriverDown):
            return ResourceUnavailable("store", detail=str(exc))
        return None

    async def init(config: Any) -> str:
        runner.current_runtime.use().add_error_classifier(classify)
        return "store"

    def fail(input: Any, store: str) -> Any:  # a sync task too: in its worker thread
        raise DriverDown("10.0.0.7:27017 refused")

    async def other(input: Any) -> Any:
        raise KeyError("not the driver's")

    async def typed(input: Any) -> Any:
        raise ValidationError("input", "t", [])

    async def hook(emission: Any) -> None:
        raise DriverDown("gone")

    app = Resource(
        "app",
        register=[
            Resource("store", init=init),
            Task("fail", run=fail, dependencies={"store": "store"}),
            Task("other", run=other),
            Task("typed", run=typed),
            Event("e"),
            Hook("h", on="e", run=hook),
        ],
    )
    async with runner.run(app) as rt:
        with pytest.raises(ResourceUnavailable) as down:
            await rt.run_task("fail")
        assert isinstance(down.value.__cause__, DriverDown)
        assert down.value.code == "store.unavailable" and "10.0.0.7" not in down.value.message
        with pytest.raises(KeyError):
            await rt.run_task("other")
        with pytest.raises(ValidationError):
            await rt.run_task("typed")
        with pytest.raises(HookError) as hooked:
            await rt.emit("e")
        assert isinstance(hooked.value.__cause__, ResourceUnavailable)
        assert hooked.value.http_status == 503
    assert not any(isinstance(e, ValidationError) for e in seen)  # typed: never passed


async def test_a_classifier_added_after_a_task_ran_still_applies() -> None:
    from runner.errors import ResourceUnavailable

    async def fail(input: Any) -> Any:
        raise DriverDown

    app = Resource("app", register=[Task("fail", run=fail)])
    async with runner.run(app) as rt:
        with pytest.raises(DriverDown):
            await rt.run_task("fail")
        rt.add_error_classifier(
            lambda exc: ResourceUnavailable("x") if isinstance(exc, DriverDown) else None
        )
        with pytest.raises(ResourceUnavailable):
            await rt.run_task("fail")
