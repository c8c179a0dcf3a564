"""docs/security.md's examples against what they describe: the CPU-bound pattern is the
one users-api runs, and its ASM805 warning is the one `assemble run` prints."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs/security.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def _load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def test_the_cpu_bound_pattern_is_the_one_users_api_runs() -> None:
    (block,) = _blocks("yaml")
    shown = _load(block)
    app = _load((ROOT / "manifests/users-api/app.yaml").read_text())
    for name, middleware in shown["middleware"].items():
        real = app["middleware"][name]
        assert real["use"] == middleware["use"], name
        for key, value in middleware["config"].items():
            assert key in real["config"], (name, key)
            if not str(real["config"][key]).startswith("${"):
                assert real["config"][key] == value, (name, key)
    for name, task in shown["tasks"].items():
        real = app["tasks"][name]
        for key, value in task.items():
            assert real[key] == value, (name, key)


def test_the_asm805_line_shown_is_the_one_printed(tmp_path: Path) -> None:
    import subprocess
    import sys

    (block,) = _blocks("text")
    line = block.strip()
    manifest = ROOT / "manifests/users-api/app.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "assembler", "call", str(manifest), "health"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "HOME": str(tmp_path)},
        timeout=60,
    )
    assert line in proc.stderr, proc.stderr
