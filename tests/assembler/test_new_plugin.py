"""``assemble new plugin``: the distribution it writes installs into a fresh venv, passes
its own tests, shows in ``assemble plugins`` as written, and runs its example app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def assemble(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "assembler", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_a_new_plugin_installs_passes_its_tests_lists_and_runs(tmp_path: Path) -> None:
    made = assemble(
        Path(sys.executable), "new", "plugin", "greet", "--dir", str(tmp_path), cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    dist = tmp_path / "assemble-greet"
    assert made.stdout.strip() == f"wrote {dist}"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps"]
    install += ["--no-build-isolation", "--disable-pip-version-check", str(dist)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)

    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=dist,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout

    listed = assemble(python, "--plugins", "greet", "plugins", "--format", "json", cwd=dist)
    assert listed.returncode == 0, listed.stderr
    (info,) = json.loads(listed.stdout)
    assert (info["name"], info["distribution"], info["version"]) == (
        "greet",
        "assemble-greet",
        "0.1.0",
    )
    assert info["components"] == ["greet.greeter"]

    called = assemble(
        python, "call", "example/app.yaml", "greet", "--input", '{"name": "Ada"}', cwd=dist
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == "hello, Ada!"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("Greet", "'Greet' is not a plugin name"),
        ("1up", "'1up' is not a plugin name"),
        ("a-b", "'a-b' is not a plugin name"),
        ("x" * 41, "is not a plugin name"),
    ],
)
def test_a_bad_name_is_a_usage_error(tmp_path: Path, name: str, said: str) -> None:
    r = assemble(Path(sys.executable), "new", "plugin", name, "--dir", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error[ASM806]: ") and said in r.stderr
    assert "hint: a plugin name is lower case" in r.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "assemble-greet").mkdir()
    (tmp_path / "assemble-greet" / "mine.txt").write_text("keep")
    r = assemble(
        Path(sys.executable), "new", "plugin", "greet", "--dir", str(tmp_path), cwd=tmp_path
    )
    assert r.returncode == 2 and "exists already" in r.stderr
    assert [p.name for p in (tmp_path / "assemble-greet").iterdir()] == ["mine.txt"]


def test_the_files_written_in_process(tmp_path: Path) -> None:
    """The same command's work without a subprocess (so coverage sees it)."""
    from assembler._new import NewError, new_plugin

    target = new_plugin("my_tool", tmp_path)
    assert target == tmp_path / "assemble-my-tool"
    written = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert written == [
        "README.md",
        "example/app.yaml",
        "example/example_tasks.py",
        "pyproject.toml",
        "src/assemble_my_tool/__init__.py",
        "tests/test_my_tool.py",
    ]
    assert 'my_tool = "assemble_my_tool"' in (target / "pyproject.toml").read_text()
    compile((target / "src/assemble_my_tool/__init__.py").read_text(), "plugin", "exec")
    compile((target / "tests/test_my_tool.py").read_text(), "tests", "exec")
    with pytest.raises(NewError, match="exists already"):
        new_plugin("my_tool", tmp_path)
    with pytest.raises(NewError, match="is not a plugin name"):
        new_plugin("My", tmp_path)
