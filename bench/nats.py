"""Remote calls on NATS (``tunnel.nats``): calls per second with 1, 2 and 3 workers, and
the latency of a remote call against a local one.

``python -m bench.nats [--quick] [--json]`` from the repo root (needs the ``nats`` extra
and a NATS server at ``NATS_URL``, default ``nats://127.0.0.1:4222``).

Workers are real ``assemble run worker.yaml`` processes serving ``jobs.work`` (a task
that burns about 0.5 ms of CPU, so that the workers' capacity matters, then returns its
input). This process is the caller: a client app where ``jobs.work`` is a ``remote: true``
task routed by ``tunnel.nats``. Figures:

- **latency**: p50/p99 of sequential calls, remote (1 worker) and local (the same task
  run in this process), after a warm-up;
- **throughput**: calls per second with 64 callers in flight for a fixed time, with 1, 2
  and 3 workers; the scaling ratio is each figure over the 1-worker one.

The machine's core count bounds the scaling: with 2 cores, the caller and the workers
share them. Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")

TASKS = """
import time

def work(input):
    end = time.perf_counter() + 0.0005  # ~0.5 ms of CPU per call
    while time.perf_counter() < end:
        pass
    return input
"""

WORKER = """
assemble: 1
id: bench_worker
resources:
  logger: {use: logger, config: {level: warning}}
  bus:
    use: tunnel.nats
    config: {url: "${env.NATS_URL}", subject_prefix: "${env.PREFIX}", serve: [jobs.work]}
tasks:
  jobs.work: {run: bench_nats_tasks:work}
"""

CALLER = """
assemble: 1
id: bench_caller
resources:
  bus:
    use: tunnel.nats
    config:
      url: "${env.NATS_URL}"
      subject_prefix: "${env.PREFIX}"
      call: [jobs.work]
      timeout: 30s
tasks:
  jobs.work: {remote: true}
  local.work: {run: bench_nats_tasks:work}
"""


def start_worker(folder: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "assembler", "run", str(folder / "worker.yaml")],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "is running" not in line:
        proc.kill()
        raise SystemExit(f"a worker did not start: {line}{proc.stderr.read()}")
    return proc


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1e6,
    }


async def measure(folder: Path, env: dict[str, str], n: int, seconds: float) -> dict[str, Any]:
    import anyio

    import assembler
    import runner

    os.environ.update(env)
    sys.path.insert(0, str(folder))
    (folder / "caller.yaml").write_text(CALLER)
    checked = assembler.check(str(folder / "caller.yaml"), assembler.load_plugins())
    if not checked.ok or checked.app is None:
        raise SystemExit("\n".join(d.message for d in checked.diagnostics))
    workers: list[subprocess.Popen[str]] = []
    figures: dict[str, Any] = {}
    try:
        async with runner.run(checked.app) as rt:
            payload = {"id": 42, "name": "job"}
            workers.append(start_worker(folder, env))

            async def lat(task: str) -> list[float]:
                for _ in range(200):
                    await rt.run_task(task, payload)
                out = []
                for _ in range(n):
                    start = time.perf_counter()
                    await rt.run_task(task, payload)
                    out.append(time.perf_counter() - start)
                return out

            figures["local"] = percentiles(await lat("local.work"))
            figures["remote"] = percentiles(await lat("jobs.work"))
            rates: dict[int, float] = {}
            for count in (1, 2, 3):
                while len(workers) < count:
                    workers.append(start_worker(folder, env))
                await anyio.sleep(0.5)
                done = 0
                until = time.perf_counter() + seconds

                async def caller(until: float = until) -> None:
                    nonlocal done
                    while time.perf_counter() < until:
                        await rt.run_task("jobs.work", payload)
                        done += 1

                start = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for _ in range(64):
                        tg.start_soon(caller)
                rates[count] = done / (time.perf_counter() - start)
            figures["calls_per_s"] = rates
            figures["scaling"] = {k: v / rates[1] for k, v in rates.items()}
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            if proc.stderr:
                proc.stderr.close()
    return figures


def render(report: dict[str, Any]) -> str:
    f = report["figures"]
    lines = [
        f"tunnel.nats ({report['machine']}, python {report['python']}, {report['date']})",
        "",
        f"latency, sequential: local  p50 {f['local']['p50_us']:8,.0f} us   "
        f"p99 {f['local']['p99_us']:8,.0f} us",
        f"                     remote p50 {f['remote']['p50_us']:8,.0f} us   "
        f"p99 {f['remote']['p99_us']:8,.0f} us",
        "",
        "throughput, 64 callers:",
    ]
    for count, rate in f["calls_per_s"].items():
        lines.append(
            f"  {count} worker(s): {rate:8,.0f} calls/s   x{f['scaling'][count]:.2f} of 1 worker"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    doc = (__doc__ or "").splitlines()[0]
    p = argparse.ArgumentParser(prog="python -m bench.nats", description=doc)
    p.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    n, seconds = (300, 1.0) if args.quick else (2000, 5.0)
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as tmp:
        folder = Path(tmp)
        (folder / "worker.yaml").write_text(WORKER)
        (folder / "bench_nats_tasks.py").write_text(TASKS)
        env = {**os.environ, "NATS_URL": NATS_URL, "PREFIX": f"bench{uuid.uuid4().hex[:8]}"}
        env.pop("ASSEMBLE_PLUGINS", None)
        env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
        figures = asyncio.run(measure(folder, env, n, seconds))
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "python": platform.python_version(),
        "figures": figures,
    }
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
