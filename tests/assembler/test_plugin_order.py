"""Hooks are called with pluggy's semantics: ``wrapper=True`` (and old-style
``hookwrapper``) implementations around the others, ``tryfirst`` first, then the rest
from the last registered to the first, ``trylast`` last; and each plugin's failure is
still reported on its own, the later plugins still heard."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pluggy
import pytest

import assembler
import runner

APP = """\
assemble: 1
id: ordered
tasks:
  hello: {run: ordered_code:hello}
"""


@pytest.fixture
def manifest(tmp_path: Path) -> str:
    (tmp_path / "ordered_code.py").write_text("def hello(input):\n    return 'hi'\n")
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    return str(path)


def _plugin(
    name: str, heard: list[str], *, tryfirst: bool = False, trylast: bool = False
) -> object:
    """A plugin named ``name`` whose ``assemble_validate`` notes that it ran."""

    class Plugin:
        __plugin_name__ = name

        @assembler.hookimpl(tryfirst=tryfirst, trylast=trylast)
        def assemble_validate(self, manifest: Any, report: Any) -> None:
            heard.append(name)
            report(f"{name} was here", code=f"{name}/here")

    return Plugin()


class Wrapping:
    __plugin_name__ = "wrapping"

    def __init__(self, heard: list[str]) -> None:
        self.heard = heard

    @assembler.hookimpl(wrapper=True)
    def assemble_validate(self, manifest: Any, report: Any) -> Generator[None, Any, Any]:
        self.heard.append("wrapping: before")
        result = yield
        self.heard.append("wrapping: after")
        return result


class OldWrapping:
    __plugin_name__ = "old_wrapping"

    def __init__(self, heard: list[str]) -> None:
        self.heard = heard

    @assembler.hookimpl(hookwrapper=True)
    def assemble_validate(self, manifest: Any, report: Any) -> Generator[None, Any, None]:
        self.heard.append("old_wrapping: before")
        outcome = yield
        assert isinstance(outcome, pluggy.Result)
        self.heard.append("old_wrapping: after")


def test_validate_hooks_run_in_pluggys_documented_order(manifest: str) -> None:
    heard: list[str] = []
    loaded = assembler.load_plugins(
        only=[],
        extra=[
            _plugin("last", heard, trylast=True),
            _plugin("plain_one", heard),
            _plugin("first", heard, tryfirst=True),
            Wrapping(heard),
            _plugin("plain_two", heard),
            OldWrapping(heard),
        ],
    )
    result = assembler.check(manifest, loaded)
    # wrappers outermost (the last registered outermost), tryfirst, then the plain ones
    # from the last registered, trylast at the end; each wrapper's teardown after
    assert heard == [
        "old_wrapping: before",
        "wrapping: before",
        "first",
        "plain_two",
        "plain_one",
        "last",
        "wrapping: after",
        "old_wrapping: after",
    ]
    # each report names its own plugin
    mine = {(d.code, d.plugin) for d in result.diagnostics if d.code.endswith("/here")}
    assert mine == {(f"{n}/here", n) for n in ("first", "plain_two", "plain_one", "last")}


def test_a_failing_implementation_is_reported_and_the_others_still_run(manifest: str) -> None:
    heard: list[str] = []

    class Broken:
        __plugin_name__ = "broken"

        @assembler.hookimpl(tryfirst=True)
        def assemble_validate(self, manifest: Any, report: Any) -> None:
            raise KeyError("nope")

    class BrokenWrapper:
        __plugin_name__ = "broken_wrapper"

        @assembler.hookimpl(wrapper=True)
        def assemble_validate(self, manifest: Any, report: Any) -> Generator[None, Any, Any]:
            result = yield
            raise ValueError("after the yield")
            return result  # pragma: no cover

    loaded = assembler.load_plugins(
        only=[], extra=[_plugin("fine", heard), Broken(), BrokenWrapper()]
    )
    result = assembler.check(manifest, loaded)
    assert heard == ["fine"]  # heard although 'broken' ran first and raised
    failures = sorted(d.message for d in result.diagnostics if d.code == "ASM604")
    assert failures == [
        "plugin 'broken' failed in assemble_validate: KeyError: 'nope'",
        "plugin 'broken_wrapper' failed in assemble_validate: ValueError: after the yield",
    ]


def test_compile_results_follow_the_call_order_so_trylast_has_the_last_word(
    manifest: str,
) -> None:
    def replacing(name: str, *, tryfirst: bool = False, trylast: bool = False) -> object:
        class Plugin:
            __plugin_name__ = name

            @assembler.hookimpl(tryfirst=tryfirst, trylast=trylast)
            def assemble_compile(self, manifest: Any, definitions: list[Any]) -> list[Any]:
                return [runner.Task("hello", run=lambda input: name)]

        return Plugin()

    loaded = assembler.load_plugins(
        only=[],
        extra=[
            replacing("late", trylast=True),
            replacing("plain"),
            replacing("early", tryfirst=True),
        ],
    )
    calls = loaded.call("assemble_compile", manifest=None, definitions=[])
    assert [plugin for plugin, _ in calls] == ["early", "plain", "late"]


def test_wrappers_that_misbehave_are_each_reported(manifest: str) -> None:
    heard: list[str] = []

    class RaisesFirst:
        __plugin_name__ = "raises_first"

        @assembler.hookimpl(wrapper=True)
        def assemble_validate(self, manifest: Any, report: Any) -> Generator[None, Any, Any]:
            raise ValueError("before the yield")
            yield  # pragma: no cover

    class NeverYields:
        __plugin_name__ = "never_yields"

        @assembler.hookimpl(wrapper=True)
        def assemble_validate(self, manifest: Any, report: Any) -> Generator[None, Any, Any]:
            if manifest is not None:
                return None
            yield  # pragma: no cover

    class YieldsTwice:
        __plugin_name__ = "yields_twice"

        @assembler.hookimpl(wrapper=True)
        def assemble_validate(self, manifest: Any, report: Any) -> Generator[None, Any, Any]:
            result = yield
            yield
            return result  # pragma: no cover

    loaded = assembler.load_plugins(
        only=[], extra=[_plugin("fine", heard), RaisesFirst(), NeverYields(), YieldsTwice()]
    )
    result = assembler.check(manifest, loaded)
    assert heard == ["fine"]
    assert sorted(d.message for d in result.diagnostics if d.code == "ASM604") == [
        "plugin 'never_yields' failed in assemble_validate: RuntimeError: "
        "the hook wrapper did not yield",
        "plugin 'raises_first' failed in assemble_validate: ValueError: before the yield",
        "plugin 'yields_twice' failed in assemble_validate: RuntimeError: "
        "the hook wrapper yielded twice",
    ]


def test_a_wrapper_may_replace_the_results(manifest: str) -> None:
    class Adds:
        __plugin_name__ = "adds"

        @assembler.hookimpl(wrapper=True)
        def assemble_compile(
            self, manifest: Any, definitions: list[Any]
        ) -> Generator[None, Any, Any]:
            results = yield
            return [*results, [runner.Task("extra", run=lambda input: "x")]]

    class Plain:
        __plugin_name__ = "plain"

        @assembler.hookimpl
        def assemble_compile(self, manifest: Any, definitions: list[Any]) -> list[Any]:
            return [runner.Task("hello", run=lambda input: "plain")]

    loaded = assembler.load_plugins(only=[], extra=[Plain(), Adds()])
    calls = loaded.call("assemble_compile", manifest=None, definitions=[])
    assert [plugin for plugin, _ in calls] == ["plain", ""]  # what a wrapper added: nobody's


def test_with_debug_a_plugin_failure_raises(manifest: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        __plugin_name__ = "broken"

        @assembler.hookimpl
        def assemble_validate(self, manifest: Any, report: Any) -> None:
            raise KeyError("nope")

    loaded = assembler.load_plugins(only=[], extra=[Broken()])
    monkeypatch.setenv("ASSEMBLE_DEBUG", "1")
    with pytest.raises(KeyError):
        assembler.check(manifest, loaded)
