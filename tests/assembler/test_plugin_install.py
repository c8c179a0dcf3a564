"""The example plugin, pip-installed into a fresh venv, found by its entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "plugin"
BROKEN = Path(__file__).parent / "broken_plugin"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv that sees this checkout's assemble, with both plugin packages installed."""
    where = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(where)], check=True)
    python = where / "bin" / "python"
    for package in (EXAMPLE, BROKEN):
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--disable-pip-version-check",
                str(package),
            ],
            check=True,
            capture_output=True,
        )
    return python


def assemble(
    python: Path, *args: str, cwd: Path = EXAMPLE / "example"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "assembler", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_the_plugin_shows_with_its_distribution_and_components(venv: Path) -> None:
    r = assemble(venv, "--plugins", "shout", "plugins", "--format", "json")
    assert r.returncode == 0, r.stderr
    (info,) = json.loads(r.stdout)
    assert info["name"] == "shout" and info["distribution"] == "assemble-shout"
    assert info["version"] == "1.0.0"
    assert info["components"] == ["shout.counter", "shout.upper"]


def test_a_broken_plugin_is_an_error_naming_its_distribution(venv: Path) -> None:
    r = assemble(venv, "plugins")
    assert r.returncode == 1
    assert (
        "error[ASM601]: plugin 'broken' (distribution assemble-broken-example 0.0.1) " in r.stderr
    )
    assert "No module named 'this_dependency_is_not_installed'" in r.stderr
    assert "Traceback" not in r.stderr
    v = assemble(venv, "validate", "app.yaml")
    assert v.returncode == 1 and "ASM601" in v.stderr


def test_its_component_validates_and_runs(venv: Path) -> None:
    assert assemble(venv, "--plugins", "shout", "validate", "app.yaml").returncode == 0
    r = assemble(venv, "--plugins", "shout", "call", "app.yaml", "hello")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == "HELLO VISITOR 42!!"


def test_plugins_env_var_selects_too(venv: Path) -> None:
    r = subprocess.run(
        [str(venv), "-m", "assembler", "plugins"],
        capture_output=True,
        text=True,
        env={"ASSEMBLE_PLUGINS": "shout", "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    assert "shout.upper" in r.stdout


def test_a_bad_config_is_reported_at_its_place_naming_the_plugin(
    venv: Path, tmp_path: Path
) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(
        "assemble: 1\nid: demo\nresources:\n  a: {use: shout.counter, config: {start: -1}}\n"
        "  b: {use: shout.counter}\n"
        "tasks:\n  t:\n    run: demo_tasks:t\n    middleware:\n"
        "      - use: shout.upper\n        config: {suffix: too-long, loud: true}\n"
    )
    (tmp_path / "demo_tasks.py").write_text("def t(input):\n    return 'x'\n")
    r = assemble(venv, "--plugins", "shout", "validate", "--format", "json", str(app), cwd=tmp_path)
    found = {(d["code"], d["line"], d["col"], d["plugin"]) for d in json.loads(r.stdout)}
    assert found == {
        ("ASM603", 4, 43, "shout"),  # start: -1 is below the minimum
        ("ASM603", 11, 26, "shout"),  # suffix is too long
        ("ASM603", 11, 36, "shout"),  # unknown key `loud`
    }, r.stdout
    messages = " ".join(d["message"] for d in json.loads(r.stdout))
    assert "'shout.upper' (plugin shout)" in messages


def test_cross_component_rules_of_the_plugin(venv: Path, tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(
        "assemble: 1\nid: demo\nresources:\n  a: {use: shout.counter}\n  b: {use: shout.counter}\n"
    )
    r = assemble(venv, "--plugins", "shout", "validate", str(app), cwd=tmp_path)
    assert r.returncode == 1
    assert (
        "app.yaml:5:3: error[shout/one-counter] resource 'b' is a second shout.counter" in r.stderr
    )
    assert "rule of plugin: shout" in r.stderr


def test_the_composed_schema_checks_plugin_configs(venv: Path) -> None:
    import jsonschema

    r = assemble(venv, "--plugins", "shout", "schema")
    schema = json.loads(r.stdout)
    validator = jsonschema.Draft202012Validator(schema)
    good = {
        "assemble": 1,
        "id": "x",
        "resources": {"c": {"use": "shout.counter", "config": {"start": 1}}},
    }
    bad = {
        "assemble": 1,
        "id": "x",
        "resources": {"c": {"use": "shout.counter", "config": {"start": "1"}}},
    }
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors(bad))
