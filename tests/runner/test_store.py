"""The store: registration tree, overrides, tag queries."""

from __future__ import annotations

import pytest

import runner
from runner import Resource, Tag, Task
from runner.errors import DuplicateIdError, InvalidAppError, NotRegisteredError, OverrideError

pytestmark = pytest.mark.anyio

route = Tag("http.route", config_schema={"type": "object", "required": ["path"]})
audited = Tag("audited")


def build() -> runner.Store:
    app = Resource(
        "app",
        register=[
            Task(
                "get_user",
                run=lambda i: i,
                tags=[route.with_({"method": "GET", "path": "/u"}), audited],
            ),
            Task("internal", run=lambda i: i),
            Resource(
                "users",
                register=[Task("create_user", run=lambda i: i, tags=[route.with_({"path": "/c"})])],
            ),
            Resource("db", tags=[audited]),
            route,
        ],
    )
    return runner.Store.build(app)


def test_tag_queries_return_definitions_with_their_config_in_registration_order() -> None:
    store = build()
    found = store.tasks_with_tag(route)
    assert [(t.definition.id, t.config) for t in found] == [
        ("get_user", {"method": "GET", "path": "/u"}),
        ("create_user", {"path": "/c"}),
    ]
    assert [t.definition.id for t in store.tasks_with_tag("audited")] == ["get_user"]
    assert [r.definition.id for r in store.resources_with_tag(audited)] == ["db"]


def test_tag_extract_and_exists() -> None:
    store = build()
    get_user = store.tasks["get_user"]
    assert route.exists(get_user) and not route.exists(store.tasks["internal"])
    use = route.extract(get_user)
    assert use is not None and use.config["path"] == "/u" and use.id == "http.route"
    plain = audited.extract(get_user)
    assert plain is not None and plain.config is None


def test_the_store_lists_kinds_and_finds_ids() -> None:
    store = build()
    assert set(store.tasks) == {"get_user", "internal", "create_user"}
    assert set(store.resources) == {"app", "users", "db"}
    assert set(store.tags) == {"http.route"}
    assert "db" in store and len(store) == 7
    assert store.find("nope") is None
    with pytest.raises(NotRegisteredError, match="did you mean 'internal'"):
        store.get("interna")
    assert store.root.id == "app"
    assert [d.id for d in store][:2] == ["app", "get_user"]


async def test_overrides_replace_by_id_and_must_target_something() -> None:
    db = Resource("db", init=lambda c: "real")
    app = Resource("app", register=[db])
    async with runner.run(app, overrides=[runner.testing.stub_resource(db, "fake")]) as rt:
        assert rt.resource("db") == "fake"
    with pytest.raises(OverrideError, match="did you mean 'db'"):
        runner.Store.build(app, [Resource("dbb")])
    with pytest.raises(OverrideError, match="is a task but replaces a resource"):
        runner.Store.build(app, [Task("db", run=lambda i: i)])
    with pytest.raises(OverrideError, match="two overrides replace 'db'"):
        runner.Store.build(app, [Resource("db"), Resource("db")])


def test_the_app_must_be_a_resource() -> None:
    with pytest.raises(runner.errors.InvalidDefinitionError, match="must be a Resource"):
        runner.Store.build(Task("t", run=lambda i: i))  # type: ignore[arg-type]


def test_nested_duplicates_are_all_reported() -> None:
    app = Resource(
        "app",
        register=[
            Task("a", run=print),
            Resource("g", register=[Task("a", run=repr), Task("g", run=repr)]),
        ],
    )
    with pytest.raises(InvalidAppError) as info:
        runner.Store.build(app)
    assert sorted(e.id for e in info.value.exceptions if isinstance(e, DuplicateIdError)) == [
        "a",
        "g",
    ]
    assert "2 problems" in str(info.value)


def test_every_kind_has_its_view() -> None:
    async def mw(call: object, config: object) -> object:
        return None

    app = Resource(
        "app",
        register=[
            runner.TaskMiddleware("tm", run=mw),
            runner.ResourceMiddleware("rm", run=mw),
            runner.AsyncContext("ctx"),
            runner.Event("e"),
            runner.Hook("h", on="e", run=print),
        ],
    )
    store = runner.Store.build(app)
    assert list(store.task_middleware) == ["tm"] and list(store.resource_middleware) == ["rm"]
    assert (
        list(store.contexts) == ["ctx"]
        and list(store.events) == ["e"]
        and list(store.hooks) == ["h"]
    )
