"""What plugins get from the assembler: resolved import paths, config checks, durations,
and a registered resource that a manifest may configure."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import assembler
import runner

pytestmark = pytest.mark.anyio


def pick(config: Any) -> Any:
    return config


class KitPlugin:
    """An in-process plugin: ``kit.pick`` (imports + check) and a configurable ``kit``."""

    __plugin_name__ = "kit"

    @assembler.hookimpl
    def assemble_components(self) -> Sequence[Any]:
        def check(config: Any, report: assembler.ConfigReport) -> None:
            if config.get("low", 0) > config.get("high", 0):
                report("low is above high", at=("low",), hint="swap them")
            if config.get("explode"):
                raise RuntimeError("the check itself broke")

        def factory(config: Any) -> Any:
            async def run(call: runner.TaskCall, config: Any) -> Any:
                return {
                    "key": config["key"](await call.next()),
                    "errors": [e.__name__ for e in config.get("errors", [])],
                    "wait": assembler.duration(config.get("wait", 0)),
                }

            return run

        schema = {
            "type": "object",
            "properties": {
                "key": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "string"}},
                "low": {"type": "integer"},
                "high": {"type": "integer"},
                "explode": {"type": "boolean"},
                "wait": assembler.DURATION,
            },
            "required": ["key"],
        }
        return [
            assembler.Component(
                name="kit.pick",
                kind="middleware",
                config_schema=schema,
                factory=factory,
                imports=("key", "errors"),
                check=check,
            ),
            assembler.Component(
                name="kit",
                kind="resource",
                config_schema={"type": "object", "properties": {"size": {"type": "integer"}}},
                init=lambda config: {"configured": config},
            ),
            runner.Resource("kit", init=lambda config: {"default": True}),
        ]


def check(tmp_path: Path, manifest: str) -> assembler.Checked:
    (tmp_path / "kit_code.py").write_text(
        "def upper(value):\n    return str(value).upper()\n\n"
        "class Flaky(Exception):\n    pass\n\n"
        "def echo(input, kit=None):\n    return [input, kit]\n"
    )
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent(manifest).lstrip())
    return assembler.check(str(path), assembler.load_plugins(only=[], extra=[KitPlugin()]))


def where(checked: assembler.Checked) -> list[tuple[str, int, int]]:
    return [(d.code, d.line, d.col) for d in checked.diagnostics]


async def test_import_paths_in_a_config_arrive_resolved(tmp_path: Path) -> None:
    checked = check(
        tmp_path,
        """
        assemble: 1
        id: a
        tasks:
          t:
            run: kit_code:echo
            middleware:
              - use: kit.pick
                config: {key: "kit_code:upper", errors: [ValueError, "kit_code:Flaky"], wait: 250ms}
        """,
    )
    assert checked.ok and checked.app is not None, checked.diagnostics
    async with runner.run(checked.app) as rt:
        assert await rt.run_task("t", "x") == {
            "key": "['X', NONE]",
            "errors": ["ValueError", "Flaky"],
            "wait": 0.25,
        }


def test_import_paths_in_a_config_are_checked_at_their_place(tmp_path: Path) -> None:
    checked = check(
        tmp_path,
        """
        assemble: 1
        id: a
        middleware:
          m:
            use: kit.pick
            config:
              key: "os:getcwd"
              errors: [NoSuchBuiltin, "kit_code:Missing"]
        """,
    )
    assert where(checked) == [("ASM402", 7, 12), ("ASM401", 8, 16), ("ASM404", 8, 31)]


def test_a_components_own_check_reports_at_the_key(tmp_path: Path) -> None:
    checked = check(
        tmp_path,
        """
        assemble: 1
        id: a
        middleware:
          m: {use: kit.pick, config: {key: "kit_code:upper", low: 5, high: 1}}
          n: {use: kit.pick, config: {key: "kit_code:upper", explode: true}}
        """,
    )
    assert where(checked) == [("ASM603", 4, 59), ("ASM604", 5, 30)]
    first, second = checked.diagnostics
    assert first.message == "config of 'kit.pick' (plugin kit): low is above high"
    assert first.hint == "swap them" and first.plugin == "kit"
    assert "RuntimeError: the check itself broke" in second.message


async def test_a_manifest_configures_a_registered_resource_with_its_own_type(
    tmp_path: Path,
) -> None:
    checked = check(
        tmp_path,
        """
        assemble: 1
        id: a
        resources:
          kit: {use: kit, config: {size: 3}}
        tasks:
          t: {run: kit_code:echo, dependencies: {kit: kit}}
        """,
    )
    assert checked.ok and checked.app is not None, checked.diagnostics
    async with runner.run(checked.app) as rt:
        assert await rt.run_task("t", 1) == [1, {"configured": {"size": 3}}]


def test_another_component_may_not_take_a_registered_id(tmp_path: Path) -> None:
    checked = check(
        tmp_path,
        """
        assemble: 1
        id: a
        resources:
          kit: {init: kit_code:echo}
        """,
    )
    assert where(checked) == [("ASM205", 4, 3)]
    assert "id 'kit' is taken by plugin 'kit'" in checked.diagnostics[0].message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(0, 0.0), (1.5, 1.5), ("250ms", 0.25), ("60s", 60.0), ("5m", 300.0), ("1h", 3600.0)],
)
def test_durations(text: Any, seconds: float) -> None:
    assert assembler.duration(text) == seconds


@pytest.mark.parametrize("bad", [-1, True, "5 minutes", "ms", None, "1.5.2s"])
def test_what_is_not_a_duration(bad: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        assembler.duration(bad)
