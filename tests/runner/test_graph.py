"""The dependency graph: missing ids, duplicates, cycles with their path, waves."""

from __future__ import annotations

from typing import Any

import pytest

import runner
from runner import Event, Hook, Resource, Task, TaskMiddleware
from runner.errors import CycleError, DuplicateIdError, InvalidAppError, MissingDependencyError

pytestmark = pytest.mark.anyio


def res(id: str, **deps: str) -> Resource:
    return Resource(id, init=lambda config, **d: id, dependencies=deps)


async def start(*defs: runner.Definition) -> None:
    async with runner.run(Resource("app", register=defs)):
        pass


async def test_a_cycle_is_reported_with_its_path_before_anything_initialises() -> None:
    with pytest.raises(CycleError) as info:
        await start(res("a", x="b"), res("b", x="c"), res("c", x="a"), res("free"))
    assert str(info.value).startswith("dependency cycle: a -> b -> c -> a")
    assert info.value.path == ("a", "b", "c", "a")
    assert info.value.code == "runner.cycle"


async def test_a_cycle_through_tasks_and_middleware_is_found() -> None:
    async def mw(call: Any, config: Any, db: Any) -> Any:
        return await call.next()

    with pytest.raises(CycleError, match="db -> load -> guard -> db"):
        await start(
            Resource("db", init=lambda c, load: None, dependencies={"load": "load"}),
            Task("load", run=lambda i: i, middleware=["guard"]),
            TaskMiddleware("guard", run=mw, dependencies={"db": "db"}),
        )


async def test_a_self_dependency_is_a_cycle() -> None:
    with pytest.raises(CycleError, match="a -> a"):
        await start(res("a", me="a"))


async def test_a_cycle_through_event_hooks_between_resources_is_reported() -> None:
    async def init(config: Any, **deps: Any) -> None:
        return None

    with pytest.raises(CycleError, match=r"through event hooks"):
        await start(
            Resource("a", init=init, dependencies={"e": "ea"}),
            Resource("b", init=init, dependencies={"e": "eb"}),
            Event("ea"),
            Event("eb"),
            Hook("ha", on="ea", run=lambda e, b: None, dependencies={"b": "b"}),
            Hook("hb", on="eb", run=lambda e, a: None, dependencies={"a": "a"}),
        )


async def test_a_resource_that_emits_waits_for_what_the_hooks_need() -> None:
    log: list[str] = []

    async def announce(config: Any, ready: Any) -> None:
        await ready("up")

    async def mailer(config: Any) -> list[str]:
        log.append("mailer")
        return log

    app = Resource(
        "app",
        register=[
            Resource("announcer", init=announce, dependencies={"ready": "ready"}),
            Event("ready"),
            Hook(
                "h",
                on="ready",
                run=lambda e, mailer: mailer.append(e.data),
                dependencies={"mailer": "mailer"},
            ),
            Resource("mailer", init=mailer),
        ],
    )
    async with runner.run(app):
        pass
    assert log == ["mailer", "up"]


async def test_missing_dependencies_are_named_with_a_suggestion() -> None:
    with pytest.raises(MissingDependencyError) as info:
        await start(res("users", db="databse"), res("database"))
    err = info.value
    assert (err.owner, err.key, err.target) == ("users", "db", "databse")
    assert "did you mean 'database'" in str(err)


async def test_several_problems_are_reported_together() -> None:
    # duplicates are found first, before wiring: one problem alone is raised as itself
    with pytest.raises(DuplicateIdError):
        await start(res("a", x="nope"), res("b", y="nada"), Task("a", run=lambda i: i))
    with pytest.raises(InvalidAppError) as info2:
        await start(res("a", x="nope"), res("b", y="nada"))
    assert [e.target for e in info2.value.exceptions if isinstance(e, MissingDependencyError)] == [
        "nope",
        "nada",
    ]


async def test_duplicate_ids_name_both_kinds() -> None:
    with pytest.raises(DuplicateIdError, match="as a resource and as a task"):
        await start(res("x"), Task("x", run=lambda i: i))


async def test_the_same_definition_registered_twice_is_fine() -> None:
    shared = res("shared")
    await start(shared, Resource("group", register=[shared]))


async def test_only_injectable_kinds_can_be_dependencies() -> None:
    with pytest.raises(runner.errors.InvalidDefinitionError, match="cannot be injected"):
        await start(Event("e"), Hook("h", on="e", run=lambda e: None), res("r", h="h"))


def test_find_cycles_reports_each_loop_once() -> None:
    edges = {"a": ["b"], "b": ["a", "c"], "c": ["c"], "d": ["a", "zz"]}
    assert runner.find_cycles(edges) == [["a", "b", "a"], ["c", "c"]]
    assert runner.find_cycles({"a": ["b"], "b": []}) == []


def test_waves_group_ids_whose_needs_are_met() -> None:
    needs = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c", "outside"], "e": []}
    assert runner.waves(needs, needs.__getitem__) == [["a", "e"], ["b", "c"], ["d"]]


def test_find_cycles_is_not_recursive() -> None:
    edges = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
    edges["n5000"] = ["n0"]
    (cycle,) = runner.find_cycles(edges)
    assert len(cycle) == 5002
