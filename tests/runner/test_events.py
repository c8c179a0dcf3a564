"""Events: payload schema, hook order, stop propagation, wildcard, hook errors."""

from __future__ import annotations

from typing import Any

import pytest

import runner
from runner import Event, Hook, Resource, Task
from runner.errors import HookError, MissingDependencyError, ValidationError

pytestmark = pytest.mark.anyio


def app_of(*defs: runner.Definition) -> Resource:
    return Resource("app", register=defs)


async def test_hooks_run_by_order_then_registration() -> None:
    log: list[str] = []

    def hook(name: str, order: float) -> Hook:
        return Hook(name, on="e", order=order, run=lambda e: log.append(name))

    app = app_of(
        Event("e"),
        hook("late", 5),
        hook("first_at_0", 0),
        hook("second_at_0", 0),
        hook("early", -1),
    )
    async with runner.run(app) as rt:
        await rt.emit("e")
    assert log == ["early", "first_at_0", "second_at_0", "late"]


async def test_a_hook_may_stop_propagation() -> None:
    log: list[str] = []

    async def gate(event: runner.EventEmission) -> None:
        log.append("gate")
        if event.data == "stop":
            event.stop_propagation()
            assert event.propagation_stopped

    app = app_of(
        Event("e"),
        Hook("gate", on="e", order=1, run=gate),
        Hook("after", on="e", order=2, run=lambda e: log.append("after")),
    )
    async with runner.run(app) as rt:
        await rt.emit("e", "stop")
        await rt.emit("e", "go")
    assert log == ["gate", "gate", "after"]


async def test_wildcard_hooks_hear_every_event_in_order_with_the_others() -> None:
    log: list[tuple[str, str, Any]] = []
    app = app_of(
        Event("a"),
        Event("b"),
        Hook("all", on="*", order=1, run=lambda e: log.append(("all", e.id, e.data))),
        Hook("only_a", on="a", order=0, run=lambda e: log.append(("only_a", e.id, e.data))),
        Hook("both", on=["a", "*"], order=2, run=lambda e: log.append(("both", e.id, e.data))),
    )
    async with runner.run(app) as rt:
        await rt.emit("a", 1)
        await rt.emit("b", 2)
    assert log == [
        ("only_a", "a", 1),
        ("all", "a", 1),
        ("both", "a", 1),
        ("all", "b", 2),
        ("both", "b", 2),
    ]


async def test_a_hook_error_reaches_the_emitter_with_the_hook_id() -> None:
    log: list[str] = []

    def broken(event: runner.EventEmission) -> None:
        raise PermissionError("mail server said no")

    app = app_of(
        Event("user_registered"),
        Hook("send_welcome", on="user_registered", order=1, run=broken),
        Hook("after", on="user_registered", order=2, run=lambda e: log.append("after")),
    )
    async with runner.run(app) as rt:
        with pytest.raises(HookError) as info:
            await rt.emit("user_registered", {"id": 1})
    err = info.value
    assert (err.hook, err.event, err.code) == (
        "send_welcome",
        "user_registered",
        "runner.hook_failed",
    )
    assert "send_welcome" in str(err) and "mail server said no" in str(err)
    assert isinstance(err.__cause__, PermissionError)
    assert log == []


async def test_a_hook_error_keeps_the_http_status_of_its_cause() -> None:
    async def invalid(event: runner.EventEmission, check: Any) -> None:
        await check(event.data)

    app = app_of(
        Event("e"),
        Task("check", run=lambda i: i, input_schema={"type": "integer"}),
        Hook("h", on="e", run=invalid, dependencies={"check": "check"}),
    )
    async with runner.run(app) as rt:
        with pytest.raises(HookError) as info:
            await rt.emit("e", "x")
    assert info.value.http_status == 422


async def test_payload_is_validated_before_any_hook_runs() -> None:
    log: list[str] = []
    app = app_of(
        Event("user_registered", payload_schema={"type": "object", "required": ["user_id"]}),
        Hook("h", on="user_registered", run=lambda e: log.append("ran")),
    )
    async with runner.run(app) as rt:
        with pytest.raises(ValidationError, match="user_id: is required") as info:
            await rt.emit("user_registered", {"email": "a@b"})
        await rt.emit("user_registered", {"user_id": 1})
    assert info.value.what == "payload"
    assert log == ["ran"]


async def test_emit_without_hooks_and_through_an_injected_emitter() -> None:
    async def register(input: Any, created: Any) -> str:
        await created({"id": input})
        return "ok"

    heard: list[Any] = []
    ev = Event("created")
    app = app_of(
        ev,
        Event("quiet"),
        Task("register", run=register, dependencies={"created": ev}),
        Hook("h", on=ev, run=lambda e: heard.append(e.data)),
    )
    async with runner.run(app) as rt:
        assert await rt.emit("quiet") is None
        assert await rt.run_task("register", 7) == "ok"
        assert await rt.emit(ev, {"id": 8}) is None
    assert heard == [{"id": 7}, {"id": 8}]


async def test_hook_dependencies_are_injected() -> None:
    seen: list[Any] = []

    async def notify(event: runner.EventEmission, mailer: list[Any]) -> None:
        mailer.append(event.data)
        seen.append(list(mailer))

    app = app_of(
        Event("e"),
        Resource("mailer", init=lambda c: []),
        Hook("notify", on="e", run=notify, dependencies={"mailer": "mailer"}),
    )
    async with runner.run(app) as rt:
        await rt.emit("e", 1)
        await rt.emit("e", 2)
    assert seen == [[1], [1, 2]]


async def test_a_hook_on_an_unknown_event_is_an_error_with_a_suggestion() -> None:
    app = app_of(Event("user_registered"), Hook("h", on="user_registerd", run=lambda e: None))
    with pytest.raises(MissingDependencyError, match="did you mean 'user_registered'"):
        async with runner.run(app):
            pass


def test_emission_repr_names_the_event() -> None:
    assert repr(runner.EventEmission("e", {"a": 1})) == "<EventEmission 'e' data={'a': 1}>"
