"""PostgreSQL faults through ``sql.engine``: how fast they turn into answers.

``python -m bench.sql [--quick] [--json] [--url URL]`` from the repo root (needs the
``sql`` extra and PostgreSQL; default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``).

- **statement timeout**: an engine with ``statement_timeout: 100ms`` runs
  ``SELECT pg_sleep(5)``; the figure is the time from the call to ``SqlTimeout``
  (target: within 300 ms of the call).
- **killed connections**: every pooled connection of the engine is killed with
  ``pg_terminate_backend``; the figure is the time of the next call, which has to find
  out and reconnect (target: within 2 s).
- **a plain query** (``SELECT 1`` through a pooled connection), for scale.

Each is repeated and reported as median and worst. Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from typing import Any

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TIMEOUT_TARGET_MS = 300.0
RECOVERY_TARGET_MS = 2000.0


async def measure(url: str, rounds: int) -> dict[str, Any]:
    from sqlalchemy import text

    import assembler
    from assemble_sql import SqlTimeout
    from assemble_sql._engine import SqlConfig, make_engine

    name = f"bench_sql_{uuid.uuid4().hex[:8]}"
    config = {"url": f"{url}?application_name={name}", "statement_timeout": "100ms", "pool_size": 3}
    engine = await make_engine(assembler.from_config(SqlConfig, config))
    try:
        plain, timeouts, recoveries = [], [], []
        for _ in range(rounds * 10):
            start = time.perf_counter()
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            plain.append(time.perf_counter() - start)
        for _ in range(rounds):
            start = time.perf_counter()
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT pg_sleep(5)"))
            except SqlTimeout:
                timeouts.append(time.perf_counter() - start)
            else:
                raise SystemExit("pg_sleep(5) was not cancelled by the statement timeout")
        import asyncpg  # type: ignore[import-untyped]

        for _ in range(rounds):
            async with engine.connect() as conn:  # the pool holds a live connection
                await conn.execute(text("SELECT 1"))
            admin = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = $1",
                    name,
                )
            finally:
                await admin.close()
            if not killed:
                raise SystemExit("no pooled connection was found to kill")
            start = time.perf_counter()
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            recoveries.append(time.perf_counter() - start)
    finally:
        await engine.dispose()

    def figure(samples: list[float]) -> dict[str, float]:
        return {
            "median_ms": statistics.median(samples) * 1000,
            "worst_ms": max(samples) * 1000,
            "n": len(samples),
        }

    return {
        "plain_query": figure(plain),
        "statement_timeout_100ms": figure(timeouts),
        "after_killed_connections": figure(recoveries),
    }


def render(figures: dict[str, Any]) -> str:
    t, r, p = (
        figures["statement_timeout_100ms"],
        figures["after_killed_connections"],
        figures["plain_query"],
    )
    t_ok = "met" if t["worst_ms"] <= TIMEOUT_TARGET_MS else "missed"
    r_ok = "met" if r["worst_ms"] <= RECOVERY_TARGET_MS else "missed"
    return "\n".join(
        [
            "sql.engine on PostgreSQL (asyncpg), median / worst:",
            f"  SELECT 1 through the pool          {p['median_ms']:7.2f} / {p['worst_ms']:7.2f} ms",
            f"  pg_sleep(5) under a 100 ms timeout {t['median_ms']:7.2f} / {t['worst_ms']:7.2f} ms"
            f"  (SqlTimeout; target {TIMEOUT_TARGET_MS:.0f} ms: {t_ok})",
            f"  first call after killing the pool  {r['median_ms']:7.2f} / {r['worst_ms']:7.2f} ms"
            f"  (target {RECOVERY_TARGET_MS:.0f} ms: {r_ok})",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    doc = (__doc__ or "").splitlines()[0]
    p = argparse.ArgumentParser(prog="python -m bench.sql", description=doc)
    p.add_argument("--quick", action="store_true", help="fewer rounds")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--url", default=DEFAULT_URL, help="a postgresql+asyncpg:// URL")
    args = p.parse_args(argv)
    figures = asyncio.run(measure(args.url, 3 if args.quick else 10))
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
