"""Plugins in process: compiling and running their components, and every way they fail."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import assembler
import runner

from . import demo_plugin

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2] / "docs" / "examples" / "plugin" / "src")
)
import assemble_shout  # the example plugin, from its source folder

pytestmark = pytest.mark.anyio

APP = """\
assemble: 1
id: shop
middleware:
  cache: {use: demo.cache, config: {ttl: 5}}
  wrap: {run: shop_code:wrap, for: resources, everywhere: true}
resources:
  store: {use: demo.store, config: {url: "mem://"}}
  visits: {use: shout.counter, config: {start: 9}}
tags:
  audited: {config_schema: {type: object}}
tasks:
  hello:
    run: shop_code:hello
    dependencies: {visits: visits, log: demo.logger}
    middleware: [cache, {use: shout.upper}]
    tags: {audited: {level: 1}}
  ghost: {remote: true, idempotent: true}
"""
CODE = """\
async def wrap(call, config):
    return await call.next()

def hello(input, visits, log):
    return f"{log} {visits.bump()}"
"""


def write(tmp_path: Path, manifest: str = APP) -> str:
    (tmp_path / "shop_code.py").write_text(CODE)
    path = tmp_path / "app.yaml"
    path.write_text(manifest)
    return str(path)


def plugins(*extra: Any) -> assembler.Plugins:
    return assembler.load_plugins(only=[], extra=[demo_plugin, assemble_shout, *extra])


async def test_a_manifest_with_plugin_components_compiles_and_runs(tmp_path: Path) -> None:
    loaded = plugins()
    result = assembler.check(write(tmp_path), loaded)
    assert result.ok, result.diagnostics
    assert result.manifest is not None
    app = assembler.compile_app(result.manifest, loaded, result.imports)
    async with runner.run(app) as rt:
        assert await rt.run_task("hello") == "LOGGER 10!"
        assert rt.resource("store") == {}
        tagged = rt.store.tasks_with_tag("audited")
        assert [(t.definition.id, t.config) for t in tagged] == [("hello", {"level": 1})]
        assert rt.store.tasks["ghost"].meta["idempotent"] is True
        with pytest.raises(runner.errors.TaskNotRoutedError):
            await rt.run_task("ghost")


def test_the_composed_schema_has_every_component(tmp_path: Path) -> None:
    schema = assembler.composed_schema(plugins())
    validator = jsonschema.Draft202012Validator(schema)
    defs = schema["$defs"]
    assert {"component:demo.cache", "component:shout.upper", "component:demo.store"} <= set(defs)
    bad = {
        "assemble": 1,
        "id": "x",
        "tasks": {
            "t": {"run": "a:b", "middleware": [{"use": "demo.cache", "config": {"ttl": "soon"}}]}
        },
    }
    assert list(validator.iter_errors(bad))


def test_two_plugins_offering_one_type_are_named() -> None:
    class Twin:
        __plugin_name__ = "twin"

        @assembler.hookimpl
        def assemble_components(self) -> list[assembler.Component]:
            return [
                assembler.Component(name="demo.cache", kind="middleware", run=demo_plugin.cache_run)
            ]

    loaded = plugins(Twin())
    (problem,) = [d for d in loaded.problems if d.code == "ASM602"]
    assert "'demo.cache' is offered by two plugins: 'demo' and 'twin'" in problem.message


def test_a_plugin_hook_that_raises_is_a_diagnostic_naming_it() -> None:
    class Broken:
        __plugin_name__ = "broken"

        @assembler.hookimpl
        def assemble_components(self) -> list[assembler.Component]:
            raise ValueError("oops")

        @assembler.hookimpl
        def assemble_validate(self, manifest: Any, report: Any) -> None:
            raise KeyError("nope")

    loaded = assembler.load_plugins(only=[], extra=[Broken()])
    assert [d.code for d in loaded.problems] == ["ASM604"]
    assert (
        "plugin 'broken' failed in assemble_components: ValueError: oops"
        in loaded.problems[0].message
    )


def test_a_component_of_unknown_kind_and_an_unknown_plugin_name() -> None:
    class Odd:
        __plugin_name__ = "odd"

        @assembler.hookimpl
        def assemble_components(self) -> list[assembler.Component]:
            return [assembler.Component(name="odd.thing", kind="gadget", run=print)]  # type: ignore[arg-type]

    loaded = assembler.load_plugins(only=["nope"], extra=[Odd()])
    codes = sorted(d.code for d in loaded.problems)
    assert codes == ["ASM605", "ASM606"]


def test_assemble_compile_may_add_and_replace_definitions(tmp_path: Path) -> None:
    class Adds:
        __plugin_name__ = "adds"

        @assembler.hookimpl
        def assemble_compile(self, manifest: Any, definitions: list[Any]) -> list[Any]:
            return [
                runner.Task("extra", run=lambda input: "added"),
                runner.Task("ghost", run=lambda input: "routed"),
            ]

    loaded = plugins(Adds())
    result = assembler.check(write(tmp_path), loaded)
    assert result.manifest is not None
    app = assembler.compile_app(result.manifest, loaded, result.imports)
    ids = {d.id for d in app.register}
    assert {"extra", "ghost"} <= ids
    ghost = next(d for d in app.register if d.id == "ghost")
    assert isinstance(ghost, runner.Task) and ghost.run is not None


def test_plugin_info_lists_components_and_provided_ids() -> None:
    infos = {i.name: i for i in plugins().infos}
    assert infos["demo"].components == ("demo.cache", "demo.store")
    assert infos["demo"].provides == ("demo.logger",)
    assert infos["assemble_shout"].components == ("shout.counter", "shout.upper")


def test_two_plugins_registering_one_id_are_named() -> None:
    class Other:
        __plugin_name__ = "other"

        @assembler.hookimpl
        def assemble_components(self) -> list[runner.Definition]:
            return [runner.Resource("demo.logger", init=lambda config: "mine")]

    loaded = plugins(Other())
    (problem,) = [d for d in loaded.problems if d.code == "ASM602"]
    assert "'demo.logger' is registered by two plugins: 'demo' and 'other'" in problem.message


def test_the_composed_schema_only_admits_installed_types() -> None:
    validator = jsonschema.Draft202012Validator(assembler.composed_schema(plugins()))
    unknown = {"assemble": 1, "id": "x", "resources": {"r": {"use": "nope.thing"}}}
    known = {
        "assemble": 1,
        "id": "x",
        "resources": {"r": {"use": "demo.store", "config": {"url": "u"}}},
    }
    assert list(validator.iter_errors(unknown)) and not list(validator.iter_errors(known))
