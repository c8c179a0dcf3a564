"""Definitions are immutable, checked when built, and say what is wrong."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import runner
from runner import AsyncContext, Event, Hook, Resource, Tag, Task
from runner.errors import InvalidDefinitionError


def untyped(value: object) -> Any:
    """A deliberately wrong value, past the type checker, to test the runtime check."""
    return value


def test_definitions_are_frozen() -> None:
    task = Task("t", run=print)
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.id = "u"  # type: ignore[misc]
    assert repr(task) == "<Task 't'>"


def test_dependencies_normalise_to_refs() -> None:
    db = Resource("db")
    task = Task(
        "t", run=print, dependencies={"db": db, "cache": "cache", "x": runner.optional("x")}
    )
    assert dict(task.dependencies) == {
        "db": runner.Ref("db"),
        "cache": runner.Ref("cache"),
        "x": runner.Ref("x", optional=True),
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Task("", run=print), "non-empty string id"),
        (lambda: Task("t"), "`run` must be callable"),
        (lambda: Task("t", run=untyped(42)), "`run` must be callable, got int"),
        (lambda: Task("t", run=print, remote=True), "remote and has a `run`"),
        (lambda: Task("t", run=print, dependencies={"not-ok": "x"}), "not a Python identifier"),
        (
            lambda: Task("t", run=print, dependencies={"x": untyped(3)}),
            "expected a definition or an id",
        ),
        (lambda: Task("t", run=print, tags=[untyped("http")]), "a tag entry must be a Tag"),
        (lambda: Resource("r", register=[untyped("x")]), "which is not a definition"),
        (lambda: Hook("h", on=[], run=print), "listens to no event"),
        (lambda: Resource("r", dispose=untyped("no")), "`dispose` must be callable"),
        (lambda: runner.optional(untyped(3)), "expected a definition or an id"),
    ],
)
def test_malformed_definitions_are_refused_with_a_hint(make: object, message: str) -> None:
    with pytest.raises(InvalidDefinitionError, match=message) as info:
        make()  # type: ignore[operator]
    assert info.value.hint
    assert info.value.code == "runner.invalid_definition"


def test_hook_on_accepts_ids_definitions_and_lists() -> None:
    e = Event("e")
    assert Hook("h", on=e, run=print).events == ("e",)
    assert Hook("h", on=[e, "f", "*"], run=print).events == ("e", "f", "*")


def test_a_remote_task_is_a_placeholder() -> None:
    task = Task("app.tasks.add", remote=True)
    assert task.run is None and task.remote


def test_tags_attach_bare_or_configured() -> None:
    t = Tag("audited", config={"level": "high"})
    task = Task("x", run=print, tags=[t])
    assert task.tags[0].config == {"level": "high"} and t.tag is t


def test_async_context_is_a_definition() -> None:
    ctx = AsyncContext("auth")
    assert ctx.kind == "async context" and repr(ctx) == "<AsyncContext 'auth'>"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("defs", "message"),
    [
        (
            [Task("t", run=lambda input: 1, dependencies={"db": "db"}), Resource("db")],
            r"cannot be called as run\(input, db=...\): got an unexpected keyword argument 'db'",
        ),
        ([Task("t", run=lambda input, db: 1)], r"missing a required argument: 'db'"),
        ([Resource("r", init=lambda: 1)], r"cannot be called as init\(config\)"),
        ([Hook("h", on="*", run=lambda: 1)], r"cannot be called as run\(event\)"),
    ],
)
async def test_callables_must_accept_what_the_runtime_passes(
    defs: list[runner.Definition], message: str
) -> None:
    with pytest.raises(InvalidDefinitionError, match=message):
        async with runner.run(Resource("app", register=defs)):
            pass


@pytest.mark.anyio
async def test_keyword_catch_alls_and_builtins_pass_the_signature_check() -> None:
    async def flexible(input: object, **deps: object) -> object:
        return sorted(deps)

    app = Resource(
        "app",
        register=[
            Resource("db"),
            Task("t", run=flexible, dependencies={"db": "db"}),
            Task("p", run=print),
        ],
    )
    async with runner.run(app) as rt:
        assert await rt.run_task("t") == ["db"]
