"""runner.testing: run definitions with overrides."""

from __future__ import annotations

from typing import Any

import pytest

import runner
from runner import Resource, Task
from runner.testing import replace, run_test, stub_resource, stub_task

pytestmark = pytest.mark.anyio


async def fetch(input: Any, db: dict[str, str]) -> str:
    return db[input]


db = Resource("db", init=lambda config: {"1": "real ada"})
get_user = Task("get_user", run=fetch, dependencies={"db": db})


async def test_run_test_wraps_loose_definitions_and_applies_overrides() -> None:
    async with run_test(get_user, db, overrides=[stub_resource(db, {"1": "fake ada"})]) as rt:
        assert await rt.run_task(get_user, "1") == "fake ada"


async def test_run_test_accepts_an_app_and_stubbed_tasks() -> None:
    async def use(input: Any, get_user: Any) -> str:
        return f"<{await get_user(input)}>"

    app = Resource(
        "app", register=[db, get_user, Task("page", run=use, dependencies={"get_user": get_user})]
    )
    async with run_test(app, overrides=[stub_task(get_user, lambda i: "stub")]) as rt:
        assert await rt.run_task("page", "1") == "<stub>"


async def test_replace_keeps_the_id() -> None:
    quiet = replace(get_user, run=lambda input, db: "replaced")
    assert quiet.id == "get_user"
    async with run_test(get_user, db, overrides=[quiet]) as rt:
        assert await rt.run_task("get_user") == "replaced"
    assert isinstance(runner.testing.stub_resource("x", 1), Resource)
