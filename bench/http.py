"""Requests per second: an assemble route (auth.jwt + validation + logging.tasks) vs bare Starlette.

``python -m bench.http [--quick] [--json]`` from the repo root (needs the ``http`` extra and
PyJWT). Each server runs in its own subprocess, on uvicorn with the settings
``http.server`` uses (one process, log level warning, no access log, h11 as installed):

- **bare**: a Starlette app with one route, ``GET /users/{id:int}`` returning ``{"id": id}``;
- **assemble**: an app compiled from a manifest by the assembler: ``http.server`` and a
  task ``get_user`` tagged ``http.route`` ``GET /users/{id}`` with an ``input_schema``
  (``id`` an integer), middleware ``[jwt]`` (``auth.jwt``, HS256) and ``logging.tasks``
  everywhere, with the ``logger`` at ``info``: two JSON lines a request, written to the
  server's stderr, which is a file. Two more servers run the same app without
  ``logging.tasks`` (``route_jwt``), and without ``auth.jwt`` either (``route``), to show
  where the cost goes; they write nothing.

This process is the load generator: N keep-alive connections (plain asyncio streams,
HTTP/1.1, one request in flight each) send ``GET /users/42`` with a valid bearer token
(the same bytes to every server) for a fixed time, after a warm-up. The servers are
loaded one at a time, in turn (bare ... assemble, then assemble ... bare, ...), for
several rounds; the figure is the best round of each, and the ratio is best / best of
bare. Before loading, each server is checked (200 ``{"id": 42}``; 422 for
``/users/abc``; 401 without or with a bad token where ``auth.jwt`` is on); after, every
line the servers wrote is checked (JSON records from ``logging.tasks`` only, none at
level error). Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SECRET = "bench-http-secret-" + "k" * 32
TARGET_RATIO = 0.60

MANIFEST = """
assemble: 1
id: bench_http
resources:
  server:
    use: http.server
    config: {port: 0, openapi: false}
middleware:
  jwt: {use: auth.jwt, config: {secret: "SECRET", algorithms: [HS256]}}
LOG_ALL
tasks:
  get_user:
    run: bench_http_tasks:get_user
    middleware: [JWT]
    tags: {http.route: {method: GET, path: "/users/{id}"}}
    input_schema:
      type: object
      required: [id]
      properties: {id: {type: integer}}
      additionalProperties: false
"""

# key -> (label, auth.jwt on the route, logging.tasks everywhere). "assemble" is the
# acceptance row; the two between show where its cost goes.
VARIANTS: dict[str, tuple[str, bool, bool]] = {
    "bare": ("bare Starlette route", False, False),
    "route": ("assemble route, schema only", False, False),
    "route_jwt": ("assemble route + jwt", True, False),
    "assemble": ("assemble route + jwt + logging.tasks", True, True),
}


def manifest(key: str) -> str:
    _, jwt, log = VARIANTS[key]
    text = MANIFEST.replace("SECRET", SECRET).replace("[JWT]", "[jwt]" if jwt else "[]")
    log_all = "  log_all: {use: logging.tasks, everywhere: true}" if log else ""
    return text.replace("LOG_ALL", log_all)


TASKS = 'async def get_user(input):\n    return {"id": input["id"]}\n'


# ---------------------------------------------------------------- the servers (subprocesses)


def _uvicorn_config(app: Any) -> Any:
    import uvicorn

    # The settings of assemble_http._server._uvicorn_server.
    return uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


async def _serve_bare() -> None:
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def get_user(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["id"]})

    app = Starlette(routes=[Route("/users/{id:int}", get_user, methods=["GET"])])
    # proto IPPROTO_TCP, as http.server's bind() gets from getaddrinfo: asyncio sets
    # TCP_NODELAY only on sockets with that proto, and without it every keep-alive
    # response waits ~40 ms (Nagle against the client's delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.setblocking(False)
    print(sock.getsockname()[1], flush=True)
    await uvicorn.Server(_uvicorn_config(app)).serve(sockets=[sock])


async def _serve_assemble(folder: Path) -> None:
    import anyio

    import assembler
    import runner

    sys.path.insert(0, str(folder))
    checked = assembler.check(str(folder / "app.yaml"), assembler.load_plugins())
    if checked.app is None:
        lines = [f"{d.code} {d.line}:{d.col} {d.message}" for d in checked.diagnostics]
        raise SystemExit("bench manifest has errors:\n" + "\n".join(lines))
    async with runner.run(checked.app) as rt:
        print(rt.resource("server").port, flush=True)
        await anyio.sleep_forever()


def serve(kind: str, folder: Path) -> None:
    """Child mode: print the bound port on stdout, then serve until killed."""
    if kind == "bare":
        asyncio.run(_serve_bare())
    else:
        asyncio.run(_serve_assemble(folder))


# ---------------------------------------------------------------- the load generator


@dataclass
class Load:
    requests: int = 0
    errors: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    client_cpu: float = 0.0  # the generator's CPU time over the wall time


async def _connection(port: int, request: bytes, until: float, load: Load, record: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            start = time.perf_counter_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            load.requests += 1
            if head[9:12] != b"200":
                load.errors += 1
            if record:
                load.latencies_ns.append(time.perf_counter_ns() - start)
    finally:
        writer.close()
        await writer.wait_closed()


async def generate(
    port: int, request: bytes, connections: int, seconds: float, record: bool
) -> Load:
    load = Load()
    cpu, until = time.process_time(), time.perf_counter() + seconds
    await asyncio.gather(
        *(_connection(port, request, until, load, record) for _ in range(connections))
    )
    load.client_cpu = (time.process_time() - cpu) / seconds
    return load


def request_bytes(path: str, token: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/json"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def one(port: int, request: bytes) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(head[9:12]), await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()


# ---------------------------------------------------------------- the run


@dataclass
class Settings:
    connections: int
    seconds: float
    warmup_seconds: float
    rounds: int


@dataclass
class Figure:
    key: str
    rps_best: float
    rps_median: float
    p50_ms: float  # of the best round
    p99_ms: float
    requests: int  # in the best round
    errors: int  # over every round
    client_cpu: float  # the load generator's CPU use in the best round (1.0 = one core)


def token() -> str:
    import jwt

    claims = {"sub": "ada", "exp": int(time.time()) + 3600, "roles": ["user"]}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def start_server(kind: str, folder: Path, stderr_path: Path) -> tuple[subprocess.Popen[str], int]:
    root = Path(__file__).resolve().parents[1]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    stderr = stderr_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.http", "--serve", kind, "--dir", str(folder)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    stderr.close()
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        proc.wait()
        raise SystemExit(f"the {kind} server did not start:\n{stderr_path.read_text()[-3000:]}")
    return proc, int(line)


async def sanity(ports: dict[str, int], good: bytes) -> None:
    """Both answer {"id": 42}; the assemble route really checks the token and the input."""
    for kind, port in ports.items():
        status, body = await one(port, good)
        if status != 200 or json.loads(body) != {"id": 42}:
            raise SystemExit(f"{kind}: GET /users/42 gave {status} {body!r}")
        if kind == "bare":
            continue
        checks = [(request_bytes("/users/abc", token()), 422)]
        if VARIANTS[kind][1]:
            checks += [
                (request_bytes("/users/42", None), 401),
                (request_bytes("/users/42", "not-a-jwt"), 401),
            ]
        for request, expected in checks:
            status, body = await one(port, request)
            if status != expected:
                raise SystemExit(f"{kind}: expected {expected}, got {status} {body!r}")


async def measure(
    s: Settings, ports: dict[str, int], request: bytes
) -> tuple[dict[str, list[Load]], dict[str, Load]]:
    """Warm each server up, then load them in turn for ``s.rounds`` rounds."""
    results: dict[str, list[Load]] = {kind: [] for kind in ports}
    warm = {}
    for kind, port in ports.items():
        warm[kind] = await generate(port, request, s.connections, s.warmup_seconds, False)
    order = list(ports)
    for _ in range(s.rounds):
        for kind in order:
            await asyncio.sleep(0.2)
            results[kind].append(
                await generate(ports[kind], request, s.connections, s.seconds, True)
            )
        order.reverse()
    return results, warm


def summarise(key: str, loads: list[Load], seconds: float) -> Figure:
    rates = [load.requests / seconds for load in loads]
    best = max(range(len(loads)), key=lambda i: rates[i])
    lat = sorted(loads[best].latencies_ns)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] / 1e6 if lat else float("nan")

    return Figure(
        key,
        rates[best],
        statistics.median(rates),
        pct(0.50),
        pct(0.99),
        loads[best].requests,
        sum(load.errors for load in loads),
        loads[best].client_cpu,
    )


def render(report: dict[str, Any], figures: list[Figure]) -> str:
    s = report["settings"]
    lines = [
        f"HTTP benchmarks: Python {report['python']}, uvicorn {report['uvicorn']}, "
        f"Starlette {report['starlette']}; {s['connections']} keep-alive connections, "
        f"{s['rounds']} rounds x {s['seconds']:g} s per server "
        f"(after {s['warmup_seconds']:g} s warm-up); best round",
        "",
        f"{'server':<42}{'req/s best':>11}{'median':>9}{'x bare':>8}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}{'client CPU':>12}",
    ]
    for f in figures:
        lines.append(
            f"{VARIANTS[f.key][0]:<42}{f.rps_best:>11,.0f}{f.rps_median:>9,.0f}"
            f"{report['ratios'][f.key]:>8.0%}"
            f"{f.p50_ms:>9.2f}{f.p99_ms:>9.2f}{f.errors:>8}{f.client_cpu:>12.0%}"
        )
    ratio = report["ratio"]
    status = "met" if ratio >= TARGET_RATIO else "missed"
    lines += [
        "",
        f"assemble / bare: {ratio:.1%} of bare (best / best); "
        f"target >= {TARGET_RATIO:.0%}: {status}",
        f"assemble server log: {report['log_lines']:,} JSON lines written "
        f"({report['log_lines_per_request']:.2f} a request)",
    ]
    return "\n".join(lines)


def run(s: Settings) -> tuple[dict[str, Any], list[Figure]]:
    import starlette
    import uvicorn

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for key in VARIANTS:
            (folder / key).mkdir()
            (folder / key / "bench_http_tasks.py").write_text(TASKS)
            (folder / key / "app.yaml").write_text(manifest(key))
        procs: list[subprocess.Popen[str]] = []
        try:
            ports: dict[str, int] = {}
            for kind in VARIANTS:
                proc, ports[kind] = start_server(kind, folder / kind, folder / f"{kind}.stderr")
                procs.append(proc)
            request = request_bytes("/users/42", token())
            asyncio.run(sanity(ports, request))
            results, warm = asyncio.run(measure(s, ports, request))
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
        log = (folder / "assemble.stderr").read_text()
        quiet = "".join((folder / f"{kind}.stderr").read_text() for kind in VARIANTS)
    log_lines = [line for line in log.splitlines() if line.startswith("{")]
    if quiet.count("\n") != len(log_lines):  # only the assemble server logs
        raise SystemExit(f"a server without logging.tasks wrote to stderr:\n{quiet[:2000]}")
    for line in log.splitlines():
        if not line.startswith("{") or '"level": "error"' in line:
            raise SystemExit(f"a server wrote an unexpected line: {line[:300]}")
    figures = [summarise(kind, results[kind], s.seconds) for kind in VARIANTS]
    # Every 200 of the assemble server, warm-up included (+1: the sanity check's request).
    served = 1 + warm["assemble"].requests + sum(load.requests for load in results["assemble"])
    errors = warm["assemble"].errors + sum(load.errors for load in results["assemble"])
    report = {
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "starlette": starlette.__version__,
        "settings": asdict(s),
        "ratio": figures[-1].rps_best / figures[0].rps_best,
        "ratios": {f.key: f.rps_best / figures[0].rps_best for f in figures},
        "target_ratio": TARGET_RATIO,
        "log_lines": len(log_lines),
        "log_lines_per_request": len(log_lines) / max(1, served - errors),
    }
    return report, figures


# ---------------------------------------------------------------- logging.tasks in process


def logging_micro(calls: int, repeats: int = 5) -> list[tuple[str, float]]:
    """µs per call (best of ``repeats`` x ``calls``) of one ``logging.tasks`` run around a
    task that returns at once, under a ``runner.current_request``, with a ``logger``
    (``info``, the bench's secret to scrub) writing to a file; beside the bare call."""
    import gc

    import anyio

    import runner
    from assemble_logging._logger import close_logger, open_logger
    from assemble_logging._tasks import make_log_tasks

    async def echo(input: Any) -> Any:
        return {"id": 42}

    task = runner.Task("get_user", run=echo)
    call = runner.TaskCall(task, {"id": 42}, echo)
    middleware = make_log_tasks({})
    request = runner.Request(id="0f3a9c1e5b7d4e2a8c6b", headers={}, transport="http")
    rows: list[tuple[str, float]] = []

    async def best(run: Any) -> float:
        for _ in range(calls // 10):
            await run()
        times = []
        for _ in range(repeats):
            gc.collect()
            start = time.perf_counter()
            for _ in range(calls):
                await run()
            times.append((time.perf_counter() - start) / calls * 1e6)
        return min(times)

    async def main(loggers: dict[str, Any]) -> None:
        with runner.current_request.provide(request):
            rows.append(("the task's next() alone", await best(call.next)))
            for fmt, logger in loggers.items():
                figure = await best(functools.partial(middleware, call, None, logger))
                rows.append((f"logging.tasks, {fmt} (two records)", figure))

    with (
        tempfile.TemporaryDirectory() as folder,
        open(Path(folder) / "json.log", "w") as json_log,
        open(Path(folder) / "text.log", "w") as text_log,
    ):
        loggers = {
            fmt: open_logger(f"bench.http.{fmt}", {"format": fmt}, [SECRET], stream)
            for fmt, stream in (("json", json_log), ("text", text_log))
        }
        try:
            anyio.run(main, loggers)
        finally:
            for logger in loggers.values():
                close_logger(logger)
    return rows


def main(argv: list[str] | None = None) -> int:
    doc = (__doc__ or "").splitlines()[0]
    p = argparse.ArgumentParser(prog="python -m bench.http", description=doc)
    p.add_argument("--quick", action="store_true", help="short rounds (a smoke run)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--connections", type=int, default=None, help="keep-alive connections")
    p.add_argument(
        "--logging",
        action="store_true",
        help="only time one logging.tasks call in process (µs per call), no servers",
    )
    p.add_argument("--serve", choices=tuple(VARIANTS), help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.dir)
        return 0
    if args.logging:
        calls = 2_000 if args.quick else 20_000
        print(f"logging.tasks in process: Python {platform.python_version()}, {calls:,} calls x 5")
        for label, micros in logging_micro(calls):
            print(f"  {label:<36} {micros:8.2f} µs per call")
        return 0
    s = Settings(16, 1.0, 0.5, 1) if args.quick else Settings(32, 5.0, 2.0, 3)
    if args.connections is not None:
        s.connections = args.connections
    report, figures = run(s)
    if args.json:
        out = {f.key: asdict(f) for f in figures}
        print(json.dumps(dict(report, figures=out), indent=2))
    else:
        print(render(report, figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
