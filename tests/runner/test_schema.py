"""JSON Schema validation of input, result, config and payload, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

import runner
from runner import Resource, Tag, Task
from runner.errors import FieldError, InvalidDefinitionError, ValidationError

pytestmark = pytest.mark.anyio

USER = {
    "type": "object",
    "required": ["email", "age"],
    "properties": {
        "email": {"type": "string", "format": "email"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


async def test_input_errors_name_every_failing_field() -> None:
    calls: list[Any] = []
    task = Task("create_user", run=lambda i: calls.append(i), input_schema=USER)
    async with runner.run(Resource("app", register=[task])) as rt:
        with pytest.raises(ValidationError) as info:
            await rt.run_task("create_user", {"email": "nope", "tags": ["ok", 3], "extra": 1})
    err = info.value
    assert calls == [], "the task never ran"
    fields = {e.field: e.message for e in err.errors}
    assert fields["age"] == "is required"
    assert fields["extra"] == "is not allowed here (unknown property)"
    assert "is not a 'email'" in fields["email"]
    assert "is not of type 'string'" in fields["tags[1]"]
    assert err.http_status == 422 and err.code == "runner.validation"
    assert err.what == "input" and err.owner == "create_user"
    assert "tags[1]" in str(err)


async def test_result_is_validated_after_the_task() -> None:
    task = Task(
        "t",
        run=lambda i: {"id": 5},
        result_schema={"type": "object", "properties": {"id": {"type": "string"}}},
    )
    async with runner.run(Resource("app", register=[task])) as rt:
        with pytest.raises(
            ValidationError, match="invalid result for 't': id: 5 is not of type 'string'"
        ):
            await rt.run_task("t")


async def test_valid_values_pass_untouched() -> None:
    task = Task("t", run=lambda i: i, input_schema=USER, result_schema=USER)
    user = {"email": "a@example.com", "age": 3}
    async with runner.run(Resource("app", register=[task])) as rt:
        assert await rt.run_task("t", user) is user


async def test_resource_config_is_validated_before_anything_initialises() -> None:
    inits: list[str] = []
    db = Resource(
        "db",
        init=lambda c: inits.append("db"),
        config={"url": 1},
        config_schema={"type": "object", "properties": {"url": {"type": "string"}}},
    )
    with pytest.raises(ValidationError, match="url: 1 is not of type 'string'"):
        async with runner.run(
            Resource("app", register=[db, Resource("x", init=lambda c: inits.append("x"))])
        ):
            pass
    assert inits == []


def test_with_validates_resource_and_tag_config() -> None:
    db = Resource("db", config_schema={"type": "object", "required": ["url"]})
    with pytest.raises(ValidationError, match="url: is required"):
        db.with_({})
    configured = db.with_({"url": "pg://"})
    assert (configured.id, configured.config) == ("db", {"url": "pg://"})
    route = Tag("http.route", config_schema={"type": "object", "required": ["path"]})
    with pytest.raises(ValidationError, match="path: is required"):
        route.with_({"method": "GET"})


def test_an_invalid_schema_is_refused_at_definition_time() -> None:
    with pytest.raises(InvalidDefinitionError, match="not a valid JSON Schema at type"):
        Task("t", run=lambda i: i, input_schema={"type": "strin"})


def test_field_error_pointer_escapes() -> None:
    e = FieldError(("a/b", 0, "c~d"), "bad")
    assert e.pointer == "/a~1b/0/c~0d"
    assert e.field == "a/b[0].c~d"
    assert FieldError((), "bad").field == "(root)"


def test_a_compiled_schema_can_be_shared() -> None:
    schema = runner.Schema({"type": "integer"})
    assert Task("a", run=lambda i: i, input_schema=schema).input_schema is schema
    with pytest.raises(ValidationError) as info:
        schema.check("x", "input", "a")
    assert info.value.field == "(root)"


def test_pattern_properties_keep_the_validator_message() -> None:
    schema = runner.Schema(
        {"type": "object", "patternProperties": {"^x_": {}}, "additionalProperties": False}
    )
    with pytest.raises(ValidationError, match="does not match any of the regexes"):
        schema.check({"x_ok": 1, "bad": 2}, "config", "c")


async def test_configured_uses_and_bare_tags_are_validated_at_start() -> None:
    async def mw(call: Any, config: Any) -> Any:
        return await call.next()

    limit = runner.TaskMiddleware(
        "limit", run=mw, config_schema={"type": "object", "required": ["max"]}
    )
    hand_made = runner.MiddlewareUse("limit", {"nope": 1}, configured=True)
    with pytest.raises(ValidationError, match="max: is required"):
        async with runner.run(
            Resource("app", register=[limit, Task("t", run=lambda i: i, middleware=[hand_made])])
        ):
            pass
    route = Tag("route", config_schema={"type": "object", "required": ["path"]})
    with pytest.raises(ValidationError, match="invalid config for 'route'"):
        async with runner.run(Resource("app", register=[Task("t", run=lambda i: i, tags=[route])])):
            pass


# -- the fast "valid?" path (jsonschema-rs) ------------------------------------------

POINT = {
    "type": "object",
    "required": ["x"],
    "properties": {"x": {"type": "integer"}, "tags": {"type": "array"}},
    "additionalProperties": False,
}


def test_a_valid_value_never_reaches_the_slow_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner._schema import Schema

    schema = Schema(POINT, owner="p")
    slow = type(schema._validator)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("jsonschema was asked about a valid value")

    monkeypatch.setattr(slow, "iter_errors", refuse)
    schema.check({"x": 1, "tags": ["a"]}, "input", "p")  # jsonschema-rs said valid
    with pytest.raises(AssertionError, match="was asked"):  # invalid: jsonschema names why
        schema.check({"x": "one"}, "input", "p")


def test_invalid_values_are_still_named_field_by_field() -> None:
    from runner._schema import Schema

    with pytest.raises(ValidationError) as caught:
        Schema(POINT, owner="p").check({"x": "one", "y": 2}, "input", "p")
    assert [e.field for e in caught.value.errors] == ["y", "x"]


def test_values_the_fast_path_cannot_read_are_judged_by_jsonschema() -> None:
    import datetime as dt

    from runner._schema import Schema

    loose = Schema({"type": "object"}, owner="p")
    loose.check({"at": dt.datetime.now(), 1: "int key"}, "input", "p")  # no error
    with pytest.raises(ValidationError):
        Schema(POINT, owner="p").check({"x": dt.datetime.now()}, "input", "p")


def test_schemas_with_format_or_pattern_are_checked_by_jsonschema_alone() -> None:
    """The two libraries read formats and regexes differently: only jsonschema judges."""
    from runner._schema import Schema

    assert Schema(USER, owner="u")._fast is None
    assert Schema({"type": "string", "pattern": "^a"}, owner="s")._fast is None
    assert Schema(POINT, owner="p")._fast is not None
    with pytest.raises(ValidationError, match="email"):
        Schema(USER, owner="u").check({"email": "nope", "age": 1}, "input", "u")


# -- what a schema error may echo (DESIGN §12) ----------------------------------------


def test_number_never_admits_nan_or_infinity() -> None:
    import math

    schema = runner.Schema({"type": "object", "properties": {"amount": {"type": "number"}}})
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValidationError) as info:
            schema.check({"amount": bad}, "input", "charge")
        assert [(e.field, e.message) for e in info.value.errors] == [
            ("amount", "is not a finite number (NaN and infinity are not JSON numbers)")
        ]
    schema.check({"amount": 1e308}, "input", "charge")
    schema.check({"amount": 10**30}, "input", "charge")


def test_a_long_value_is_echoed_as_a_short_prefix() -> None:
    schema = runner.Schema({"type": "object", "properties": {"name": {"maxLength": 3}}})
    with pytest.raises(ValidationError) as info:
        schema.check({"name": "x" * 1_000_000}, "input", "t")
    message = info.value.errors[0].message
    assert message == "'" + "x" * 62 + "… (1,000,000 characters) is too long"
    assert len(info.value.message) < 200


def test_the_value_of_a_secret_named_field_is_never_echoed() -> None:
    schema = runner.Schema(
        {
            "type": "object",
            "properties": {
                "password": {"type": "string", "minLength": 8},
                "api_key": {"enum": ["a"]},
            },
        }
    )
    for value, message in [
        ({"password": ["LEAKPW3"]}, "is not of type 'string'"),
        ({"password": "LEAKPW3"}, "is too short"),
        ({"password": {"x": "LEAKPW3"}}, "is not of type 'string'"),
        ({"api_key": "LEAKPW3"}, "is not one of ['a']"),
    ]:
        with pytest.raises(ValidationError) as info:
            schema.check(value, "input", "login")
        assert [e.message for e in info.value.errors] == [message]
        assert "LEAKPW3" not in str(info.value)


def test_an_object_or_array_is_described_not_echoed() -> None:
    schema = runner.Schema({"type": "array"})
    with pytest.raises(ValidationError) as info:
        schema.check({"password": "LEAKPW3"}, "input", "t")
    assert info.value.errors[0].message == "the object is not of type 'array'"


def test_the_number_of_field_errors_is_bounded() -> None:
    schema = runner.Schema({"type": "array", "items": {"type": "integer"}})
    with pytest.raises(ValidationError) as info:
        schema.check(["x"] * 100_000, "input", "t")
    assert len(info.value.errors) == 20
