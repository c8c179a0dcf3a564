"""Assembler figures: validating a generated 1000-component manifest, CLI cold start.

Run: ``python -m bench.assembler`` (``--json`` for machine-readable figures).
Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import assembler

TARGETS = {"validate_cli_s": 1.5, "help_cold_ms": 300.0}


def generate(
    folder: Path, resources: int = 250, tasks: int = 500, events: int = 50, hooks: int = 200
) -> Path:
    """A manifest of ``resources + tasks + events + hooks`` components with real callables."""
    (folder / "gen_app.py").write_text(
        "async def make(config, **deps):\n    return config\n\n"
        "async def run(input, **deps):\n    return input\n\n"
        "def on(event, **deps):\n    return None\n"
    )
    lines = ["assemble: 1", "id: big", "resources:"]
    for i in range(resources):
        dep = f"{{parent: r{i // 2}}}" if i else "{}"
        lines += [
            f"  r{i}:",
            "    init: gen_app:make",
            f"    config: {{n: {i}}}",
            f"    dependencies: {dep}",
        ]
    lines.append("events:")
    lines += [f"  e{i}: {{payload_schema: {{type: object}}}}" for i in range(events)]
    lines.append("tasks:")
    for i in range(tasks):
        lines += [
            f"  t{i}:",
            "    run: gen_app:run",
            f"    dependencies: {{db: r{i % resources}, done: e{i % events}}}",
            "    input_schema: {type: object, properties: {id: {type: string}}}",
        ]
    lines.append("hooks:")
    for i in range(hooks):
        lines += [
            f"  h{i}:",
            f"    on: e{i % events}",
            f"    order: {i % 3}",
            "    run: gen_app:on",
            f"    dependencies: {{task: t{i}}}",
        ]
    path = folder / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


def in_process(path: Path, runs: int) -> list[float]:
    plugins = assembler.load_plugins()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = assembler.check(str(path), plugins)
        out.append(time.perf_counter() - t0)
        assert result.ok, result.diagnostics[:3]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = [sys.executable, "-m", "assembler"]
    with tempfile.TemporaryDirectory() as tmp:
        path = generate(Path(tmp))
        figures: dict[str, Any] = {
            "components": 1000,
            "manifest_bytes": path.stat().st_size,
            "validate_cli_s": timed([*exe, "validate", str(path)], args.runs),
            "validate_in_process_s": in_process(path, args.runs),
            "help_cold_ms": [t * 1000 for t in timed([*exe, "--help"], args.runs * 2)],
        }
    report = {
        k: ({"best": min(v), "median": statistics.median(v)} if isinstance(v, list) else v)
        for k, v in figures.items()
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"assembler benchmarks (Python {sys.version.split()[0]}, best / median of {args.runs})")
    print(
        f"  generated manifest: {report['components']} components, "
        f"{report['manifest_bytes']:,} bytes"
    )
    for key, label, unit in [
        ("validate_cli_s", "assemble validate (subprocess)", "s"),
        ("validate_in_process_s", "assembler.check (in process)", "s"),
        ("help_cold_ms", "assemble --help cold start", "ms"),
    ]:
        fig = report[key]
        target = TARGETS.get(key)
        verdict = (
            ""
            if target is None
            else (f"  target <= {target:g} {unit}: {'met' if fig['best'] <= target else 'MISSED'}")
        )
        print(f"  {label:<34} {fig['best']:8.3f} / {fig['median']:8.3f} {unit}{verdict}")


if __name__ == "__main__":
    main()
