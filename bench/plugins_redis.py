"""Per-call cost of the Redis-backed middleware against a real Redis (asyncio only).

``python -m bench.plugins_redis [--url URL] [--quick] [--json]`` from the repo root, with
Redis running (default ``redis://127.0.0.1:6379/0``). Each figure is the best and median
microseconds per call over several repetitions of sequential calls; the extra cost is
the figure minus the same task without middleware. Keys go under a fresh
``bench:<random>:`` prefix and are deleted at the end. Figures are reported, never
enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import assembler
import runner

MANIFEST = """
assemble: 1
id: bench_redis
resources:
  redis: {{use: redis.client, config: {{url: "{url}"}}}}
events:
  changed: {{}}
tasks:
  bare: {{run: "bench_redis_tasks:echo"}}
  cache_hit:
    run: "bench_redis_tasks:echo"
    middleware: [{{use: cache.redis, config: {{ttl: 1h, prefix: "{prefix}c:"}}}}]
  cache_miss:
    run: "bench_redis_tasks:echo"
    middleware: [{{use: cache.redis, config: {{ttl: 1h, prefix: "{prefix}c:"}}}}]
  cache_hit_invalidating:
    run: "bench_redis_tasks:echo"
    middleware:
      - use: cache.redis
        config: {{ttl: 1h, prefix: "{prefix}g:", invalidate_on: [changed]}}
  rate_limit_redis:
    run: "bench_redis_tasks:echo"
    middleware:
      - use: rate_limit
        config: {{max_requests: 1000000000, window: 1s, backend: redis, prefix: "{prefix}r:"}}
  rate_limit_memory:
    run: "bench_redis_tasks:echo"
    middleware: [{{use: rate_limit, config: {{max_requests: 1000000000, window: 1s}}}}]
"""

TASKS = "async def echo(input):\n    return input\n"

LABELS = {
    "bare": "run_task, no middleware",
    "cache_hit": "cache.redis hit (GET)",
    "cache_miss": "cache.redis miss (GET + task + SET)",
    "cache_hit_invalidating": "cache.redis hit, invalidate_on (MGET)",
    "rate_limit_redis": "rate_limit redis (EVALSHA)",
    "rate_limit_memory": "rate_limit memory",
}


def build(folder: Path, url: str, prefix: str) -> runner.Resource:
    (folder / "bench_redis_tasks.py").write_text(TASKS)
    (folder / "app.yaml").write_text(MANIFEST.format(url=url, prefix=prefix))
    checked = assembler.check(str(folder / "app.yaml"), assembler.load_plugins())
    if checked.app is None:
        lines = [f"{d.code} {d.message}" for d in checked.diagnostics]
        raise SystemExit("bench manifest has errors:\n" + "\n".join(lines))
    return checked.app


async def figures(
    app: runner.Resource, calls: int, repetitions: int, prefix: str
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    async with runner.run(app) as rt:
        await rt.run_task("cache_hit", 1)  # every later call with input 1 is a hit
        await rt.run_task("cache_hit_invalidating", 1)
        serial = iter(range(10**9))
        for key in LABELS:
            times = []
            for _ in range(repetitions):
                started = time.perf_counter()
                for _ in range(calls):
                    # a miss needs a new input on every call
                    await rt.run_task(key, next(serial) if key == "cache_miss" else 1)
                times.append((time.perf_counter() - started) / calls * 1e6)
            out[key] = {"best": min(times), "median": statistics.median(times)}
        redis = rt.resource("redis")
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
    return out


def render(report: dict[str, Any]) -> str:
    rows = report["figures"]
    bare = rows["bare"]["best"]
    lines = [
        f"Redis middleware: Python {report['python']}, redis-py {report['redis_py']}, "
        f"{report['calls']:,} sequential calls x {report['repetitions']} repetitions; "
        "µs per call",
        "",
        f"{'figure':<40}{'best':>9}{'median':>9}{'extra':>9}",
    ]
    for key, label in LABELS.items():
        r = rows[key]
        extra = "-" if key == "bare" else f"{r['best'] - bare:,.1f}"
        lines.append(f"{label:<40}{r['best']:>9,.1f}{r['median']:>9,.1f}{extra:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.plugins_redis", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("--url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    calls, repetitions = (200, 3) if args.quick else (3000, 5)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    import redis

    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp), args.url, prefix)
        rows = asyncio.run(figures(app, calls, repetitions, prefix))
    report = {
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "calls": calls,
        "repetitions": repetitions,
        "figures": rows,
    }
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
