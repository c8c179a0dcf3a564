"""Overlays: ``--overlay prod.yaml`` lays a partial manifest over the manifest.

Maps merge key by key (a section merges definition by definition, a definition key by
key); scalars and lists replace; every value keeps the place it came from, so a problem
in an overlay is reported in the overlay file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import assembler

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
assemble: 1
id: shop
config:
  greeting: hello
  limits: {per_minute: 10, burst: 2}
resources:
  settings:
    init: overlay_shop_code:settings
    config: {region: eu, flags: [a, b], db: {url: "sqlite:///dev.db", pool: 5}}
tasks:
  greet:
    run: overlay_shop_code:greet
    dependencies: {settings: settings}
"""

CODE = """\
def settings(config):
    return config

def greet(input, settings):
    return {"settings": settings}

def extra(input):
    return "extra"
"""


def write(tmp_path: Path, **files: str) -> dict[str, str]:
    sys.modules.pop("overlay_shop_code", None)  # another test's module of that name
    (tmp_path / "overlay_shop_code.py").write_text(CODE)
    out = {}
    for name, text in files.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(textwrap.dedent(text))
        out[name] = str(path)
    return out


def check(path: str, *overlays: str, env: dict[str, str] | None = None) -> assembler.Checked:
    return assembler.check(path, assembler.load_plugins(only=[]), env or {}, overlays)


def test_maps_merge_key_by_key_and_other_values_replace(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        app=BASE,
        prod="""\
        config:
          limits: {per_minute: 100}
        resources:
          settings:
            config: {region: us, flags: [c], db: {url: "postgresql://db/shop"}}
        tasks:
          extra: {run: overlay_shop_code:extra}
        """,
    )
    checked = check(files["app"], files["prod"])
    assert checked.ok, checked.diagnostics
    assert checked.manifest is not None
    data = checked.manifest.data
    assert data["config"] == {"greeting": "hello", "limits": {"per_minute": 100, "burst": 2}}
    assert data["resources"]["settings"]["config"] == {
        "region": "us",
        "flags": ["c"],  # a list replaces
        "db": {"url": "postgresql://db/shop", "pool": 5},  # a map merges
    }
    assert set(data["tasks"]) == {"greet", "extra"}  # a new definition is added
    assert data["resources"]["settings"]["init"] == "overlay_shop_code:settings"  # kept


def test_overlays_apply_in_order(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        app=BASE,
        one="config: {greeting: one, limits: {burst: 5}}\n",
        two="config: {greeting: two}\n",
    )
    checked = check(files["app"], files["one"], files["two"])
    assert checked.manifest is not None
    assert checked.manifest.data["config"] == {
        "greeting": "two",
        "limits": {"per_minute": 10, "burst": 5},
    }


def test_a_problem_in_an_overlay_is_reported_at_its_place_in_the_overlay(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        app=BASE,
        prod="""\
        tasks:
          greet:
            dependencies: {settings: setings}
        """,
    )
    checked = check(files["app"], files["prod"])
    (problem,) = checked.diagnostics
    where = (problem.code, Path(problem.file).name, problem.line, problem.col)
    assert where == ("ASM203", "prod.yaml", 3, 30)
    assert (problem.message, problem.hint) == ("unknown id 'setings'", "did you mean 'settings'?")


def test_untouched_values_keep_their_place_in_the_manifest(tmp_path: Path) -> None:
    files = write(tmp_path, app=BASE, prod="config: {greeting: hi}\n")
    checked = check(files["app"], files["prod"])
    assert checked.manifest is not None
    greeting = checked.manifest.place(("config", "greeting"))
    region = checked.manifest.place(("resources", "settings", "config", "region"))
    assert (Path(greeting.file).name, greeting.line) == ("prod.yaml", 1)
    assert (Path(region.file).name, region.line) == ("app.yaml", 9)


def test_env_values_in_an_overlay_are_interpolated_and_kept_secret(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        app=BASE,
        prod="""\
        resources:
          settings:
            config: {db: {url: "${env.DATABASE_URL}"}, region: 42x}
        """,
    )
    checked = check(files["app"], files["prod"], env={"DATABASE_URL": "postgresql://u:pw@h/db"})
    assert checked.ok
    assert checked.manifest is not None
    assert checked.manifest.data["resources"]["settings"]["config"]["db"]["url"] == (
        "postgresql://u:pw@h/db"
    )
    assert checked.manifest.is_secret(("resources", "settings", "config", "db", "url"))


def test_an_overlay_that_cannot_be_used_is_reported(tmp_path: Path) -> None:
    files = write(tmp_path, app=BASE, listy="- a\n- b\n", inc="include: [x.yaml]\n")
    missing = check(files["app"], str(tmp_path / "nope.yaml"))
    assert [d.code for d in missing.diagnostics] == ["ASM001"]
    assert "cannot read" in missing.diagnostics[0].message
    listy = check(files["app"], files["listy"])
    assert [(d.code, d.message) for d in listy.diagnostics] == [
        ("ASM102", f"overlay {files['listy']} is not a mapping")  # outside the cwd: full
    ]
    inc = check(files["app"], files["inc"])
    assert [d.code for d in inc.diagnostics] == ["ASM103"]
    assert inc.diagnostics[0].message == "an overlay may not hold `include`"


def test_the_cli_takes_overlays_for_validate_call_and_graph(tmp_path: Path) -> None:
    write(
        tmp_path,
        app=BASE,
        prod="""\
        resources:
          settings: {config: {region: us}}
        """,
        bad="tasks: {greet: {run: overlay_shop_code:nope}}\n",
    )

    def assemble(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ASSEMBLE_PLUGINS": ""}
        return subprocess.run(
            [sys.executable, "-m", "assembler", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )

    called = assemble("call", "app.yaml", "greet", "--overlay", "prod.yaml")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["settings"]["region"] == "us"
    assert assemble("validate", "app.yaml", "--overlay", "prod.yaml").returncode == 0
    bad = assemble("validate", "app.yaml", "--overlay", "prod.yaml", "--overlay", "bad.yaml")
    assert bad.returncode == 1
    assert "bad.yaml:1:" in bad.stderr and "nope" in bad.stderr
    graph = assemble("graph", "app.yaml", "--overlay", "prod.yaml")
    assert graph.returncode == 0 and "greet" in graph.stdout
