"""``assembler.require_library`` and ``ConfigReport.require_library``: one wording for
"X needs Y, which is not installed" and the extra that installs it, at validate time (a
diagnostic at the component) and at init (the component's own error)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import assembler
import runner


def test_an_installed_library_is_no_problem() -> None:
    assert assembler.missing_library("x", ["json", "pathlib"], extra="x") is None
    assembler.require_library("x", "json", extra="x")  # no error


def test_a_missing_library_is_named_with_the_extra_that_installs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "nothere", None)  # import nothere: ImportError
    missing = assembler.missing_library("demo.thing", ["json", "nothere"], extra="demo")
    assert missing is not None
    assert missing.message == "demo.thing needs `json` and `nothere`, which is not installed"
    assert missing.hint == 'install assemble[demo] (pip install "assemble[demo]")'
    assert missing.code == "assemble.missing_library"

    class DemoError(runner.errors.RunnerError):
        code = "demo.failed"

    with pytest.raises(DemoError) as raised:
        assembler.require_library(
            "demo.thing", "nothere", extra="demo", library="NotHere", error=DemoError
        )
    assert raised.value.message == "demo.thing needs NotHere, which is not installed"
    with pytest.raises(assembler.MissingLibrary):
        assembler.require_library("demo.thing", "nothere", extra="demo")


def test_a_config_check_reports_it_at_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nothere", None)
    seen: list[tuple[str, tuple[object, ...], str]] = []
    report = assembler.ConfigReport(lambda message, at, hint: seen.append((message, at, hint)))
    assert report.require_library("demo.thing", "json", extra="demo") is True
    assert not report.require_library("demo.thing", "nothere", extra="demo", at=("backend",))
    assert seen == [
        (
            "demo.thing needs `nothere`, which is not installed",
            ("backend",),
            'install assemble[demo] (pip install "assemble[demo]")',
        )
    ]


CASES = [  # (component, its block, the module hidden, what the message says)
    (
        "redis.client",
        "resources:\n  r: {use: redis.client}",
        "redis.asyncio",
        "the `redis` library",
    ),
    ("http.server", "resources:\n  s: {use: http.server}", "uvicorn", "Starlette and uvicorn"),
    ("tunnel.nats", "resources:\n  b: {use: tunnel.nats}", "nats", "nats-py"),
    ("mongo.client", "resources:\n  m: {use: mongo.client}", "pymongo", "pymongo"),
    (
        "sql.engine",
        "resources:\n  d: {use: sql.engine, config: {url: 'sqlite+aiosqlite:///x.db'}}",
        "sqlalchemy",
        "`sqlalchemy`",
    ),
    (
        "cache.redis",
        "middleware:\n  c: {use: cache.redis, config: {ttl: 60s}}",
        "redis.asyncio",
        "the `redis` library",
    ),
]


@pytest.mark.parametrize(
    ("component", "block", "module", "shown"), CASES, ids=[c[0] for c in CASES]
)
def test_each_built_in_component_says_which_extra_it_needs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    component: str,
    block: str,
    module: str,
    shown: str,
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(f"assemble: 1\nid: needs\n{block}\n")
    monkeypatch.setitem(sys.modules, module, None)
    checked = assembler.check(str(path), assembler.load_plugins())
    messages = [d.message for d in checked.diagnostics]
    said = f"config of {component!r} (plugin {component.split('.')[0]}): {component} needs {shown}"
    assert [m for m in messages if m.startswith(said)], messages
    (hint,) = {d.hint for d in checked.diagnostics if "not installed" in d.message}
    assert hint.startswith("install assemble[")
