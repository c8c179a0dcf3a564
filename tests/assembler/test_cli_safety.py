"""The CLI's safety options end to end, in real subprocesses: ``--root``,
``validate --no-import``, the warning for development secrets, and ``call --input``
checked at the boundary like an HTTP body."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "manifests" / "hello" / "app.yaml"
MARKER = "CLI-SAFETY-MARKER-51c2"


def assemble(
    *args: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "assembler", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**base, **(env or {})},
    )


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- --root -------------------------------------------------------------------------


@pytest.fixture
def monorepo(tmp_path: Path) -> tuple[Path, Path]:
    """``app/app.yaml`` includes ``../shared/tasks.yaml``; returns (manifest, shared)."""
    app = tmp_path / "app"
    write(app, "rootcli_code.py", "def hi(input):\n    return {'hi': input}\n")
    manifest = write(
        app,
        "app.yaml",
        """\
        assemble: 1
        id: rootcli
        include: [../shared/tasks.yaml]
        """,
    )
    shared = tmp_path / "shared"
    write(shared, "tasks.yaml", f"# {MARKER}\ntasks:\n  hi: {{run: rootcli_code:hi}}\n")
    return manifest, shared


def test_an_include_out_of_the_tree_needs_a_root(monorepo: tuple[Path, Path]) -> None:
    manifest, shared = monorepo
    refused = assemble("validate", str(manifest))
    assert refused.returncode == 1
    assert "app.yaml:3:11: error[ASM703] include '../shared/tasks.yaml' is outside" in (
        refused.stderr
    )
    assert "--root DIR" in refused.stderr and MARKER not in refused.stderr
    ok = assemble("validate", "--root", str(shared), str(manifest))
    assert ok.returncode == 0, ok.stderr


def test_call_graph_and_run_take_root(monorepo: tuple[Path, Path]) -> None:
    manifest, shared = monorepo
    called = assemble("call", "--root", str(shared), str(manifest), "hi", "--input", '"x"')
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == {"hi": "x"}
    graph = assemble("graph", "--root", str(shared), str(manifest))
    assert graph.returncode == 0 and '"hi"' in graph.stdout
    assert "--root DIR" in assemble("run", "--help").stdout
    missing = assemble("validate", "--root", str(shared / "nope"), str(manifest))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


# -- validate --no-import -----------------------------------------------------------


@pytest.fixture
def sentinel(tmp_path: Path) -> tuple[Path, Path]:
    """A manifest whose module writes ``flag`` when it is imported."""
    flag = tmp_path / "imported.flag"
    app = tmp_path / "app"
    write(
        app,
        "noimport_code.py",
        f"from pathlib import Path\nPath({str(flag)!r}).write_text('imported')\n"
        "def hi(input):\n    return 'hi'\n",
    )
    manifest = write(
        app,
        "app.yaml",
        """\
        assemble: 1
        id: noimport
        tasks:
          hi: {run: noimport_code:hi}
        """,
    )
    return manifest, flag


def test_no_import_imports_nothing_and_says_so_once(sentinel: tuple[Path, Path]) -> None:
    manifest, flag = sentinel
    r = assemble("validate", "--no-import", str(manifest), str(HELLO))
    assert r.returncode == 0, r.stderr
    assert not flag.exists()
    assert r.stderr.count("note: --no-import: no module was imported") == 1
    assert "ok: 2 manifest(s) valid" in r.stderr
    control = assemble("validate", str(manifest))
    assert control.returncode == 0 and flag.exists()


def test_no_import_still_checks_import_paths_as_text(tmp_path: Path) -> None:
    manifest = write(
        tmp_path,
        "app.yaml",
        """\
        assemble: 1
        id: app
        tasks:
          a: {run: "os:system"}
          b: {run: "my_app/tasks.py"}
          c: {run: "nothere_mod:f", dependencies: {x: missing}}
        """,
    )
    r = assemble("validate", "--no-import", "--format", "json", str(manifest))
    assert r.returncode == 1
    found = [(d["code"], d["line"]) for d in json.loads(r.stdout)]
    assert found == [("ASM402", 4), ("ASM401", 5), ("ASM402", 6), ("ASM203", 6)]
    assert "note: --no-import" in r.stderr


# -- development secrets ------------------------------------------------------------

DEV = """\
    assemble: 1
    id: devsecret
    config:
      jwt_secret: ${env.JWT_SECRET:-dev-only-secret-0123456789-abcdefgh}
    middleware:
      jwt: {use: auth.jwt, config: {secret: "${config.jwt_secret}", algorithms: [HS256]}}
    tasks:
      hi: {run: devsecret_code:hi}
    """
CODE = "import sys\ndef hi(input):\n    print('task ran', file=sys.stderr)\n    return 'hi'\n"


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    write(tmp_path, "devsecret_code.py", CODE)
    return write(tmp_path, "app.yaml", DEV)


def test_call_warns_of_a_development_secret_before_the_app_starts(dev: Path) -> None:
    r = assemble("call", str(dev), "hi", unset=("JWT_SECRET",))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '"hi"'
    lines = r.stderr.splitlines()
    warning = next(i for i, line in enumerate(lines) if line.startswith("warning[ASM805]"))
    assert lines[warning] == (
        f"warning[ASM805]: middleware 'jwt': config `secret` is a development default "
        f"({dev}:4:15); set JWT_SECRET before deploying"
    )
    assert warning < lines.index("task ran")
    assert "dev-only-secret" not in r.stderr


def test_no_warning_when_the_environment_gives_the_secret(dev: Path) -> None:
    r = assemble("call", str(dev), "hi", env={"JWT_SECRET": "s" * 40})
    assert r.returncode == 0, r.stderr
    assert "ASM805" not in r.stderr


def test_validate_does_not_warn_of_development_secrets(dev: Path) -> None:
    r = assemble("validate", str(dev), unset=("JWT_SECRET",))
    assert r.returncode == 0 and "ASM805" not in r.stderr


def test_run_warns_before_it_is_running(dev: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "assembler", "run", str(dev)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while not seen or "is running" not in seen[-1]:
        assert time.monotonic() < deadline and proc.poll() is None, seen
        seen.append(proc.stderr.readline())
    proc.terminate()
    proc.communicate(timeout=30)
    assert any(line.startswith("warning[ASM805]") and "JWT_SECRET" in line for line in seen)


# -- call --input at the boundary ---------------------------------------------------


@pytest.mark.parametrize(
    ("given", "code", "needle"),
    [
        ('{"name": "\\ud800"}', "ASM804", "name: holds a lone surrogate (U+D800)"),
        ('{"name": "Ada\\u0000"}', "ASM804", "name: holds a NUL character"),
        ('{"name": "\udcff"}', "ASM804", "name: holds a lone surrogate (U+DCFF)"),  # bad UTF-8
        ('{"\\udc00": 1}', "ASM804", "(the key) holds a lone surrogate"),
        ('{"name": "Ada", "n": NaN}', "ASM804", "n: is not a finite number"),
        ('{"name": "Ada", "n": -Infinity}', "ASM804", "n: is not a finite number"),
        ('{"name": "Ada", "n": [1e400]}', "ASM804", "n[0]: is not a finite number"),
        ('{"name": "Ada", "n": 9223372036854775808}', "ASM804", "n: is an integer outside"),
        ("[" * 100_000, "ASM801", "nested too deeply"),
        ("1" * 5_000, "ASM801", "a number has too many digits"),
    ],
)
def test_call_input_is_checked_at_the_boundary(given: str, code: str, needle: str) -> None:
    r = assemble("call", str(HELLO), "greet", "--input", given)
    assert r.returncode == 2, r.stderr
    assert f"error[{code}]: --input is not" in r.stderr and needle in r.stderr
    assert "  hint: " in r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    assert "greeted" not in r.stderr  # refused before the app started
