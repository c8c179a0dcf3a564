"""Per-call overhead of the built-in resilience and cache middleware.

``python -m bench.plugins [--backend asyncio|trio] [--quick] [--json]`` from the repo root.
The app is built from a manifest through the assembler, as users build theirs. Each
figure is the best (minimum) and median ns per call over several repetitions; the
overhead of a middleware is its figure minus the same task without middleware, both
timed in this run, and each figure's ratio to a plain ``await`` of the task's coroutine
is reported too. Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

import assembler
import runner

from .runtime import Loop, Settings, plain_await, run_task_loop, time_loop

MANIFEST = """
assemble: 1
id: bench_plugins
tasks:
  bare: {run: "bench_tasks:echo"}
  timeout: {run: "bench_tasks:echo", middleware: [{use: timeout, config: {after: 10s}}]}
  retry: {run: "bench_tasks:echo", middleware: [{use: retry, config: {attempts: 3}}]}
  cache_hit: {run: "bench_tasks:echo", middleware: [{use: cache.memory, config: {ttl: 1h}}]}
  slow: {run: "bench_tasks:slow", middleware: [{use: timeout, config: {after: 100ms}}]}
  rate_limit:
    run: "bench_tasks:echo"
    middleware: [{use: rate_limit, config: {max_requests: 1000000000, window: 1s}}]
"""

TASKS = (
    "import anyio\n\n"
    "async def echo(input):\n    return input\n\n"
    "async def slow(input):\n    await anyio.sleep(10)\n"
)

# key -> (label, target overhead in ns, BlueLibs Runner 5.5.0 on this machine in ns)
SPECS: dict[str, tuple[str, float | None, float | None]] = {
    "plain_await": ("plain await (the task's coroutine)", None, None),
    "bare": ("run_task, no middleware", None, None),
    "timeout": ("timeout (10s, not reached)", 5000, 17700),
    "retry": ("retry (no failure)", None, None),
    "cache_hit": ("cache.memory hit", 2000, 4000),
    "rate_limit": ("rate_limit memory (under the limit)", None, None),
}


@dataclass
class Row:
    key: str
    best: float
    median: float
    overhead: float | None  # best - best of "bare"
    ratio: float  # best / best of the plain await

    @property
    def target(self) -> float | None:
        return SPECS[self.key][1]

    @property
    def met(self) -> bool | None:
        if self.target is None or self.overhead is None:
            return None
        return self.overhead <= self.target


def build(folder: Path) -> runner.Resource:
    (folder / "bench_tasks.py").write_text(TASKS)
    (folder / "app.yaml").write_text(MANIFEST)
    checked = assembler.check(str(folder / "app.yaml"), assembler.load_plugins())
    if checked.app is None:
        lines = [f"{d.code} {d.message}" for d in checked.diagnostics]
        raise SystemExit("bench manifest has errors:\n" + "\n".join(lines))
    return checked.app


async def figures(s: Settings, app: runner.Resource) -> list[Row]:
    plain_best, plain_median = await time_loop(plain_await, s.iterations, s.repetitions)
    rows = [Row("plain_await", plain_best, plain_median, None, 1.0)]
    async with runner.run(app) as rt:
        await rt.run_task("cache_hit", 1)  # warm: every later call is a hit
        bare = None
        for key in ("bare", "timeout", "retry", "cache_hit", "rate_limit"):
            loop: Loop = run_task_loop(rt, key)
            best, median = await time_loop(loop, s.iterations, s.repetitions)
            overhead = None if bare is None else best - bare
            bare = best if key == "bare" else bare
            rows.append(Row(key, best, median, overhead, best / plain_best))
    return rows


async def timeout_lateness(app: runner.Resource, runs: int) -> dict[str, float]:
    """How long after its 100 ms deadline a timed-out call returns to its caller (ms)."""
    late = []
    async with runner.run(app) as rt:
        for _ in range(runs):
            start = time.perf_counter()
            try:
                await rt.run_task("slow", None)
            except TimeoutError:
                late.append((time.perf_counter() - start - 0.1) * 1000)
    late.sort()
    return {"min": late[0], "median": late[len(late) // 2], "max": late[-1]}


def render(report: dict[str, Any], rows: list[Row]) -> str:
    s = report["settings"]
    lines = [
        f"plugin middleware benchmarks: backend {s['backend']}, Python {report['python']}, "
        f"{s['iterations']:,} calls x {s['repetitions']} repetitions; ns per call",
        "",
        f"{'figure':<40}{'best':>9}{'median':>9}{'overhead':>10}{'x await':>9}"
        f"{'target':>12} {'':<7}{'Runner':>8}",
    ]
    for r in rows:
        label, _, node = SPECS[r.key]
        overhead = "-" if r.overhead is None else f"{r.overhead:,.0f}"
        target = "-" if r.target is None else f"<= {r.target:,.0f}"
        status = {None: "", True: "met", False: "missed"}[r.met]
        lines.append(
            f"{label:<40}{r.best:>9,.0f}{r.median:>9,.0f}{overhead:>10}{r.ratio:>8.1f}x"
            f"{target:>12} {status:<7}{'-' if node is None else f'{node:,.0f}':>8}"
        )
    lines.append("")
    lines.append("overhead = best - best of `run_task, no middleware` (the same task, bare)")
    late = report["timeout_lateness_ms"]
    lines.append(
        f"timeout 100ms on a 10 s task: the caller gets TaskTimeoutError "
        f"{late['min']:.2f} / {late['median']:.2f} / {late['max']:.2f} ms "
        f"(min / median / max) after the deadline, over {report['lateness_runs']} runs"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plugins", description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    p.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    s = Settings(args.backend, 5_000, 3, 0) if args.quick else Settings(args.backend, 100_000, 7, 0)
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp))
        rows = anyio.run(figures, s, app, backend=s.backend)
        runs = 5 if args.quick else 20
        late = anyio.run(timeout_lateness, app, runs, backend=s.backend)
    report = {
        "python": platform.python_version(),
        "settings": asdict(s),
        "timeout_lateness_ms": late,
        "lateness_runs": runs,
    }
    if args.json:
        out = {r.key: dict(asdict(r), target=r.target, met=r.met) for r in rows}
        print(json.dumps(dict(report, figures=out), indent=2))
    else:
        print(render(report, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
