"""The import contracts (``[tool.importlinter]`` in pyproject.toml, run by .ci/run):
they list every private module of every plugin, and they fail on a violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if p.name.startswith("assemble_"))


def _contracts() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert isinstance(config, dict)
    return config


def test_every_plugin_and_every_private_module_is_covered() -> None:
    config = _contracts()
    assert config["root_packages"] == ["runner", "assembler", *PLUGINS]
    contracts = config["contracts"]
    assert isinstance(contracts, list)
    (layers,) = [c for c in contracts if c["type"] == "layers"]
    assert layers["layers"] == [" : ".join(PLUGINS), "assembler", "runner"]
    forbidden = {m for c in contracts if c["type"] == "forbidden" for m in c["forbidden_modules"]}
    for plugin in PLUGINS:
        for module in sorted((ROOT / "plugins" / plugin).glob("_*.py")):
            if module.stem != "__init__":
                name = f"{plugin}.{module.stem}"
                assert name in forbidden, f"{name} is private: list it in [tool.importlinter]"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'plugins'}"}
    return subprocess.run(
        [str(lint), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_violation_in_a_scratch_copy_breaks_a_contract(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("runner", "assembler"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    for plugin in PLUGINS:
        shutil.copytree(ROOT / "plugins" / plugin, tmp_path / "plugins" / plugin, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    kept = _lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr  # the copy itself is clean

    (tmp_path / "runner" / "_upwards.py").write_text("import assembler\n")
    private = tmp_path / "plugins" / "assemble_cache" / "_reach.py"
    private.write_text("from assemble_http._server import bind\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "plugins build on the assembler, the assembler on the runtime" in broken.stdout
    assert "other plugins use assemble_http through its public modules only BROKEN" in (
        broken.stdout
    )
    assert "runner._upwards -> assembler" in broken.stdout
