"""Tunnel round trip, Python to Python: a remote task call's latency (p50/p99) and throughput.

``python -m bench.tunnel [--quick] [--json]`` from the repo root (needs the ``http`` extra).

The server is a real ``tunnel.server`` app in its own process (``assemble run``), serving
``app.tasks.echo`` (returns its input). This process runs a client app compiled from a
manifest: ``app.tasks.echo`` is a ``remote: true`` placeholder routed by a
``tunnel.client`` (one pooled httpx client, loopback HTTP/1.1 keep-alive). The input is a
small dict with a ``datetime`` and a list, so the serializer does real work both ways.

Figures, one caller at a time (sequential calls, after a warm-up):

- **local**: the same echo as a local task (the runtime's own cost, for scale);
- **raw httpx**: an ``httpx.AsyncClient.post`` of the already-encoded body to the same
  server endpoint (HTTP + the server side, without the client's routing and serializer);
- **tunnel**: ``rt.run_task`` of the remote task: routing, serializer, HTTP, server,
  serializer back.

Then **throughput**: calls per second with ``--concurrency`` callers in flight (default
32) for a fixed time. Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

TOKEN = "bench-tunnel-token-0123456789"
#: p50 of a tunnel call on loopback should stay within this many milliseconds.
TARGET_P50_MS = 2.0

SERVER = f"""
assemble: 1
id: bench_tunnel_server
resources:
  tunnel:
    use: tunnel.server
    config: {{port: PORT, tokens: [{TOKEN}], tasks: [app.tasks.echo]}}
tasks:
  app.tasks.echo: {{run: bench_tunnel_tasks:echo}}
"""

CLIENT = f"""
assemble: 1
id: bench_tunnel_client
resources:
  remote:
    use: tunnel.client
    config: {{url: "URL", token: {TOKEN}, tasks: [app.tasks.echo], max_connections: 64}}
tasks:
  app.tasks.echo: {{remote: true}}
  local.echo: {{run: bench_tunnel_tasks:echo}}
"""

TASKS = """
async def echo(input):
    return input
"""

INPUT = {
    "id": 42,
    "name": "Ada Lovelace",
    "at": dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
    "tags": ["a", "b", "c"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    (folder / "server.yaml").write_text(SERVER.replace("PORT", str(port)))
    (folder / "bench_tunnel_tasks.py").write_text(TASKS)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])
    )
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "assembler", "run", str(folder / "server.yaml")],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited:\n{(folder / 'server.log').read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not start listening within 30 s")


async def latencies(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    for _ in range(min(200, n)):
        await call()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[int(len(ordered) * 0.99) - 1] * 1e6,
        "mean_us": statistics.fmean(ordered) * 1e6,
        "n": len(ordered),
    }


async def throughput(call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> float:
    done = 0
    until = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < until:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def measure(
    folder: Path, url: str, n: int, concurrency: int, seconds: float
) -> dict[str, Any]:
    import httpx

    import assembler
    import runner
    from assemble_tunnel import dumps, loads

    sys.path.insert(0, str(folder))
    (folder / "client.yaml").write_text(CLIENT.replace("URL", url))
    checked = assembler.check(str(folder / "client.yaml"), assembler.load_plugins())
    if not checked.ok or checked.app is None:
        raise SystemExit("\n".join(d.message for d in checked.diagnostics))
    body = dumps({"input": INPUT}).encode()
    headers = {"x-runner-token": TOKEN, "content-type": "application/json"}
    async with runner.run(checked.app) as rt, httpx.AsyncClient() as http:
        answer = await rt.run_task("app.tasks.echo", INPUT)
        if answer != INPUT:
            raise SystemExit(f"the remote echo answered {answer!r}")

        async def raw() -> Any:
            r = await http.post(f"{url}/task/app.tasks.echo", content=body, headers=headers)
            return loads(r.content)

        if (await raw())["result"] != INPUT:
            raise SystemExit("the raw call did not echo")
        figures: dict[str, Any] = {
            "local": summary(await latencies(lambda: rt.run_task("local.echo", INPUT), n)),
            "raw_httpx": summary(await latencies(raw, n)),
            "tunnel": summary(await latencies(lambda: rt.run_task("app.tasks.echo", INPUT), n)),
        }
        figures["tunnel_calls_per_s"] = await throughput(
            lambda: rt.run_task("app.tasks.echo", INPUT), concurrency, seconds
        )
    return figures


def render(report: dict[str, Any]) -> str:
    f = report["figures"]
    rows = [
        f"tunnel round trip, Python -> Python over loopback ({report['machine']}, "
        f"python {report['python']}, {report['date']})",
        "",
        "| call | p50 | p99 | mean |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label in (
        ("local", "local task"),
        ("raw_httpx", "raw httpx POST"),
        ("tunnel", "tunnel (remote task)"),
    ):
        s = f[key]
        rows.append(
            f"| {label} | {s['p50_us']:,.0f} us | {s['p99_us']:,.0f} us | {s['mean_us']:,.0f} us |"
        )
    p50_ms = f["tunnel"]["p50_us"] / 1000
    extra = f["tunnel"]["p50_us"] - f["raw_httpx"]["p50_us"]
    verdict = "met" if p50_ms <= TARGET_P50_MS else "missed"
    rows += [
        "",
        f"tunnel p50 {p50_ms:.2f} ms (target {TARGET_P50_MS} ms: {verdict}); "
        f"client-side cost over raw httpx: {extra:,.0f} us",
        f"throughput with {report['concurrency']} callers: {f['tunnel_calls_per_s']:,.0f} calls/s",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    doc = (__doc__ or "").splitlines()[0]
    p = argparse.ArgumentParser(prog="python -m bench.tunnel", description=doc)
    p.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--concurrency", type=int, default=32, help="callers for the throughput run")
    args = p.parse_args(argv)
    n, seconds = (300, 1.0) if args.quick else (3000, 5.0)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-tunnel-") as tmp:
        folder = Path(tmp)
        server = start_server(folder, port)
        try:
            figures = asyncio.run(
                measure(folder, f"http://127.0.0.1:{port}/__runner", n, args.concurrency, seconds)
            )
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
    report = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "python": platform.python_version(),
        "concurrency": args.concurrency,
        "target_p50_ms": TARGET_P50_MS,
        "figures": figures,
    }
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
