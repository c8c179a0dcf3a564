"""Micro-benchmarks of the runner runtime.

``python -m bench.runtime [--backend asyncio|trio] [--quick] [--json]`` from the repo root.
Each figure is the best (minimum) and the median of several repetitions of N iterations,
with its ratio to a plain ``await`` of an equivalent coroutine timed in the same run. The
init/dispose figure and its RSS run in a fresh subprocess. Targets are reported, never
enforced: the script exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

import runner

Loop = Callable[[int], Awaitable[Any]]  # does the measured operation n times
SIZE = 1000  # resources and tasks in the init/dispose figure


@dataclass(frozen=True)
class Settings:
    backend: str
    iterations: int  # per repetition of a micro-benchmark
    repetitions: int
    lifecycle_repetitions: int


# key -> (label, target, BlueLibs Runner 5.5.0 on Node 20), in the figure's unit
SPECS: dict[str, tuple[str, float | None, float | None]] = {
    "plain_await": ("plain await (1 coroutine)", None, None),
    "plain_await_3": ("plain await (3 coroutines)", None, None),
    "run_task": ("1. run_task, trivial task", 1000, 990),
    "dependency_call": ("2. await dep(1), injected task", None, None),
    "middleware_3": ("3. run_task, 3 middleware", 2400, 4800),
    "emit_3_hooks": ("4. emit, 3 hooks", 3000, 14000),
    "plain_lifecycle": ("plain awaits of the init/dispose coroutines", None, None),
    "init_dispose": (f"5. init+dispose {SIZE} resources + {SIZE} tasks", 50, 50),
}


@dataclass
class Figure:
    key: str  # in SPECS
    unit: str  # "ns/op" or "ms"
    best: float
    median: float
    ratios: dict[str, float] = field(default_factory=dict)  # baseline label -> best / its best

    @property
    def name(self) -> str:
        return SPECS[self.key][0]

    @property
    def target(self) -> float | None:
        return SPECS[self.key][1]

    @property
    def node(self) -> float | None:
        return SPECS[self.key][2]

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.best <= self.target


# -- the code under measurement ----------------------------------------------------------


async def echo(input: Any) -> Any:
    return input


async def echo_with(input: Any, r: int) -> Any:
    return input


async def noop(event: Any) -> None:
    return None


async def passthrough(call: runner.TaskCall, config: Any) -> Any:
    return await call.next(call.input)


async def call_dep(n: int, dep: Callable[[Any], Awaitable[Any]]) -> None:
    for _ in range(n):
        await dep(1)


def micro_app() -> runner.Resource:
    t = runner.Task("t", run=echo)
    mws = [runner.TaskMiddleware(f"mw{i}", run=passthrough) for i in range(3)]
    hooks = [runner.Hook(f"hook{i}", on="e", run=noop) for i in range(3)]
    t3 = runner.Task("t3", run=echo, middleware=mws)
    driver = runner.Task("call_dep", run=call_dep, dependencies={"dep": t})
    return runner.Resource("app", register=[t, t3, driver, runner.Event("e"), *mws, *hooks])


async def init_resource(config: int, parent: int | None = None) -> int:
    return config


async def dispose_resource(value: int) -> None:
    return None


def lifecycle_app() -> runner.Resource:
    """SIZE resources (each ``r{i}`` depends on ``r{i // 2}``: ~10 waves), SIZE tasks."""
    resources = [
        runner.Resource(
            f"r{i}",
            init=init_resource,
            dispose=dispose_resource,
            config=i,
            dependencies={"parent": f"r{i // 2}"} if i else {},
        )
        for i in range(SIZE)
    ]
    tasks = [
        runner.Task(f"task{i}", run=echo_with, dependencies={"r": r})
        for i, r in enumerate(resources)
    ]
    return runner.Resource("big", register=[*resources, *tasks])


# -- loops -------------------------------------------------------------------------------


async def plain_await(n: int) -> None:
    for _ in range(n):
        await echo(1)


async def plain_await_3(n: int) -> None:
    for _ in range(n):
        await noop(1)
        await noop(1)
        await noop(1)


def run_task_loop(rt: runner.Runtime, task: str) -> Loop:
    async def loop(n: int) -> None:
        for _ in range(n):
            await rt.run_task(task, 1)

    return loop


def emit_loop(rt: runner.Runtime, event: str) -> Loop:
    async def loop(n: int) -> None:
        for _ in range(n):
            await rt.emit(event, 1)

    return loop


async def lifecycle_once(app: runner.Resource) -> None:
    async with runner.run(app):
        pass


async def plain_lifecycle(n: int) -> None:
    """What the app's own code costs: every init and dispose coroutine, awaited in turn."""
    for _ in range(n):
        for i in range(SIZE):
            await init_resource(i, i // 2)
        for i in range(SIZE):
            await dispose_resource(i)


# -- measuring ---------------------------------------------------------------------------


async def time_loop(loop: Loop, n: int, reps: int) -> tuple[float, float]:
    """Best and median ns per operation over ``reps`` runs of ``loop(n)``, after a warm-up."""
    await loop(max(n // 10, 1))
    samples = []
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter_ns()
        await loop(n)
        samples.append((time.perf_counter_ns() - start) / n)
    return min(samples), statistics.median(samples)


async def measure(key: str, loop: Loop, s: Settings) -> Figure:
    best, median = await time_loop(loop, s.iterations, s.repetitions)
    return Figure(key, "ns/op", best, median)


def ratios(fig: Figure, *baselines: tuple[str, Figure]) -> Figure:
    fig.ratios = {label: fig.best / base.best for label, base in baselines}
    return fig


async def micro_figures(s: Settings) -> list[Figure]:
    base = await measure("plain_await", plain_await, s)
    base3 = await measure("plain_await_3", plain_await_3, s)
    async with runner.run(micro_app()) as rt:
        task = await measure("run_task", run_task_loop(rt, "t"), s)
        dep = await measure("dependency_call", lambda n: rt.run_task("call_dep", n), s)
        mw = await measure("middleware_3", run_task_loop(rt, "t3"), s)
        emit = await measure("emit_3_hooks", emit_loop(rt, "e"), s)
    one, three = ("1 await", base), ("3 awaits", base3)
    return [base, base3, *(ratios(f, one) for f in (task, dep, mw)), ratios(emit, three, one)]


async def lifecycle_figures(s: Settings) -> list[Figure]:
    app = lifecycle_app()
    best, median = await time_loop(lambda _: lifecycle_once(app), 1, s.lifecycle_repetitions)
    fig = Figure("init_dispose", "ms", best / 1e6, median / 1e6)
    best, median = await time_loop(plain_lifecycle, 1, s.lifecycle_repetitions)
    plain = Figure("plain_lifecycle", "ms", best / 1e6, median / 1e6)
    return [plain, ratios(fig, ("plain awaits", plain))]


async def lifecycle_child(s: Settings) -> dict[str, Any]:
    """Run in a fresh process: the init/dispose figures and the RSS growth they cause."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    figures = await lifecycle_figures(s)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss = {"before_kib": before, "peak_kib": peak, "growth_kib": peak - before}
    return {"figures": [asdict(f) for f in figures], "rss": rss}


def run_lifecycle_subprocess(args: argparse.Namespace) -> tuple[list[Figure], dict[str, int]]:
    cmd = [sys.executable, "-m", "bench.runtime", "--lifecycle-child", "--backend", args.backend]
    cmd += ["--quick"] if args.quick else []
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    return [Figure(**f) for f in data["figures"]], data["rss"]


# -- reporting ---------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} ns" if unit == "ns/op" else f"{value:.2f} ms"


def row(fig: Figure) -> str:
    ratio = ", ".join(f"{r:.1f}x {label}" for label, r in fig.ratios.items()) or "baseline"
    target = "-" if fig.target is None else f"<= {fmt(fig.target, fig.unit)}"
    status = {None: "", True: "met", False: "missed"}[fig.met]
    return (
        f"{fig.name:<46}{fmt(fig.best, fig.unit):>10}{fmt(fig.median, fig.unit):>10}  "
        f"{ratio:<30}{target:>12} {status:<7}{fmt(fig.node, fig.unit):>9}"
    )


def render(report: dict[str, Any], figures: list[Figure]) -> str:
    s, rss = report["settings"], report["rss"]
    head = (
        f"runner benchmarks: backend {s['backend']}, Python {report['python']}, "
        f"{s['iterations']:,} iterations x {s['repetitions']} repetitions "
        f"(init/dispose: {s['lifecycle_repetitions']} repetitions); ns per operation, "
        "ms per init+dispose"
    )
    columns = f"{'figure':<46}{'best':>10}{'median':>10}  {'ratio (best/best)':<30}"
    columns += f"{'target':>12} {'':<7}{'Node':>9}"
    memory = (
        f"init/dispose process (fresh subprocess): peak RSS {rss['peak_kib']:,} KiB, "
        f"growth {rss['growth_kib']:,} KiB over {rss['before_kib']:,} KiB after imports"
    )
    return "\n".join([head, "", columns, *(row(f) for f in figures), "", memory])


def to_json(report: dict[str, Any], figures: list[Figure]) -> str:
    def entry(f: Figure) -> dict[str, Any]:
        return dict(asdict(f), name=f.name, target=f.target, node=f.node, met=f.met)

    return json.dumps(dict(report, figures={f.key: entry(f) for f in figures}), indent=2)


# -- command line ------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    p.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--lifecycle-child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(args.backend, iterations=5_000, repetitions=3, lifecycle_repetitions=3)
    return Settings(args.backend, iterations=100_000, repetitions=9, lifecycle_repetitions=15)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    s = settings(args)
    if args.lifecycle_child:
        print(json.dumps(anyio.run(lifecycle_child, s, backend=s.backend)))
        return 0
    life, rss = run_lifecycle_subprocess(args)
    figures = anyio.run(micro_figures, s, backend=s.backend) + life
    report = {"python": platform.python_version(), "settings": asdict(s), "rss": rss}
    print(to_json(report, figures) if args.json else render(report, figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
