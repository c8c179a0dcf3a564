"""Build apps from manifest text, the way users do: YAML through the assembler, then run."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import assembler
import runner


def write(tmp_path: Path, manifest: str, **modules: str) -> Path:
    """Write ``app.yaml`` (dedented) and ``NAME.py`` modules beside it; the manifest's path."""
    for name, source in modules.items():
        sys.modules.pop(name, None)  # another test's module of the same name
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent(manifest).lstrip())
    return path


def check(path: Path, env: dict[str, str] | None = None) -> assembler.Checked:
    """Validate with every installed plugin (the built-ins included)."""
    return assembler.check(str(path), assembler.load_plugins(), env)


def app(
    tmp_path: Path, manifest: str, env: dict[str, str] | None = None, **modules: str
) -> runner.Resource:
    """The compiled app; fails the test with the diagnostics if the manifest has errors."""
    checked = check(write(tmp_path, manifest, **modules), env)
    if not checked.ok or checked.app is None:
        raise AssertionError(
            "manifest has errors:\n"
            + "\n".join(f"{d.code} {d.line}:{d.col} {d.message}" for d in checked.diagnostics)
        )
    return checked.app


def problems(
    tmp_path: Path, manifest: str, env: dict[str, str] | None = None, **modules: str
) -> list[tuple[str, int, int, str]]:
    """``(code, line, col, message)`` of every diagnostic."""
    checked = check(write(tmp_path, manifest, **modules), env)
    return [(d.code, d.line, d.col, d.message) for d in checked.diagnostics]
