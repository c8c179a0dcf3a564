"""Faults and hostile input, measured on real processes: what a stranger or an outage costs.

``python -m bench.faults [--quick] [--json] [--before REV]`` from the repo root (needs the
``all`` extra, PostgreSQL and Redis on their usual ports).

- **amplification**: what one hostile request costs the server in bytes: a ``POST
  /users`` whose ``name`` is 1 MB of text (users-api on SQLite), and a 2 MiB call to a
  ``tunnel.server`` (manifests/tunnel/server.yaml) whose ``card`` fails its pattern. The
  figures are the answer's bytes and the log's bytes per request byte.
- **recovery**: users-api on PostgreSQL and Redis (the prod overlay, tight timeouts:
  statements 1 s) under 8 concurrent clients while PostgreSQL refuses connections
  (``ALLOW_CONNECTIONS false``), while it stalls (a paused TCP proxy: connections open,
  no answer), and while Redis stalls. The figures: the answers by status, the slowest
  answer during the fault, the time from the fault's end to the first success, and the
  lines and tracebacks the server logged during the fault.
- **login flood**: 64 concurrent wrong-password logins for 20 s (``--quick``: 5 s) on
  users-api (SQLite, login rate limits off, so every login hashes): the server's peak
  RSS and the latency of ``GET /health`` meanwhile.

``--before REV`` runs every scenario also on a git worktree of ``REV`` (say the last
commit before the hostile-input work), so both columns come from one run on one
machine. Figures are reported, never enforced.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.hostile.load import Load
from tests.hostile.proxy import FaultProxy, fault_proxy
from tests.hostile.servers import ROOT, LogBook, UsersApi, drop, psql, start

#: The prod overlay's timeouts tightened so a fault costs seconds (keys both versions
#: know; the newer one also bounds the pool and each operation: see TIGHT_NOW).
TIGHT_BEFORE = """
resources:
  db: {config: {connect_timeout: 1s, statement_timeout: 1s}}
"""
TIGHT_NOW = """
resources:
  db: {config: {connect_timeout: 1s, statement_timeout: 1s, pool_timeout: 1s}}
  redis: {config: {timeout: 500ms, connect_timeout: 500ms, pool_timeout: 500ms}}
"""
GENEROUS = {"LOGINS_PER_CLIENT": "1000000", "LOGINS_PER_EMAIL": "1000000"}


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A checkout of ``rev`` in a temporary folder (a git worktree), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="assemble-before-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), rev],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


# -- amplification ------------------------------------------------------------------


def amplification(root: Path, scratch: Path) -> dict[str, Any]:
    book = LogBook()
    app = start("sqlite", scratch / "amp", book, root=root, **GENEROUS)
    try:
        body = json.dumps({"email": "big@example.com", "name": "x" * 1_000_000, "password": "p"})
        before = app.log.stat().st_size
        answer = httpx.post(
            f"{app.base}/users",
            content=body.encode(),
            headers={"content-type": "application/json"},
            timeout=60,
        )
        time.sleep(0.5)  # the log lines of the request are written by now
        logged = app.log.stat().st_size - before
    finally:
        drop(app)
    users = {
        "request_bytes": len(body),
        "status": answer.status_code,
        "answer_bytes": len(answer.content),
        "log_bytes": logged,
        "answer_per_request_byte": round(len(answer.content) / len(body), 4),
        "log_per_request_byte": round(logged / len(body), 4),
    }
    return {"users_api_1mb_name": users, "tunnel_2mib_call": tunnel_call(root, scratch)}


def tunnel_call(root: Path, scratch: Path) -> dict[str, Any]:
    port = free_port()
    folder = scratch / "tunnel"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "tunnel.log"
    env = {
        "TUNNEL_TOKEN": "bench-tunnel-token-0123456789",
        "TUNNEL_PORT": str(port),
        "PYTHONPATH": f"{root}:{root / 'plugins'}",
    }
    manifest = root / "manifests" / "tunnel" / "server.yaml"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assembler", "run", str(manifest)],
            env={**_environ(), **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    try:
        base = f"http://127.0.0.1:{port}/__runner"
        wait_port(port, proc)
        body = json.dumps({"input": {"amount": 1, "card": "4" * (2 * 1024 * 1024 - 64)}})
        before = log.stat().st_size
        answer = httpx.post(
            f"{base}/task/billing.charge",
            content=body.encode(),
            headers={"x-runner-token": env["TUNNEL_TOKEN"], "content-type": "application/json"},
            timeout=60,
        )
        time.sleep(0.5)
        logged = log.stat().st_size - before
    finally:
        proc.terminate()
        proc.wait(30)
    return {
        "request_bytes": len(body),
        "status": answer.status_code,
        "answer_bytes": len(answer.content),
        "log_bytes": logged,
        "answer_per_request_byte": round(len(answer.content) / len(body), 4),
        "log_per_request_byte": round(logged / len(body), 4),
    }


def _environ() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.pop("ASSEMBLE_PLUGINS", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the tunnel server exited at startup")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the tunnel server did not listen in 30 s")


# -- recovery -----------------------------------------------------------------------


def recovery(root: Path, scratch: Path, tight: str, fault_seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    book = LogBook()
    app = start("postgresql", scratch / "refuse", book, root=root, overlay=tight, **GENEROUS)
    try:
        out["postgres_refuses"] = _fault(app, _refuse(app), fault_seconds)
    finally:
        drop(app)
    with fault_proxy("127.0.0.1", 5432) as proxy:
        app = start(
            "postgresql",
            scratch / "stall",
            book,
            root=root,
            overlay=tight,
            postgres=proxy.url_host,
            **GENEROUS,
        )
        try:
            out["postgres_stalls"] = _fault(app, _stall(proxy), fault_seconds)
        finally:
            drop(app)
    with fault_proxy("127.0.0.1", 6379) as proxy:
        app = start(
            "postgresql",
            scratch / "redis",
            book,
            root=root,
            overlay=tight,
            redis_url=f"redis://{proxy.url_host}/0",
            **GENEROUS,
        )
        try:
            out["redis_stalls"] = _fault(app, _stall(proxy), fault_seconds, reads_cached=True)
        finally:
            drop(app)
    return out


class _Switch:
    def __init__(self, on: Any, off: Any) -> None:
        self.on, self.off = on, off


def _refuse(app: UsersApi) -> _Switch:
    def on() -> None:
        psql(f'ALTER DATABASE "{app.database}" ALLOW_CONNECTIONS false')
        psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{app.database}' AND pid <> pg_backend_pid()"
        )

    return _Switch(on, lambda: psql(f'ALTER DATABASE "{app.database}" ALLOW_CONNECTIONS true'))


def _stall(proxy: FaultProxy) -> _Switch:
    return _Switch(proxy.pause, proxy.resume)


def _fault(
    app: UsersApi, switch: _Switch, seconds: float, *, reads_cached: bool = False
) -> dict[str, Any]:
    email = f"bench-{time.monotonic_ns()}@example.com"
    made = httpx.post(
        f"{app.base}/users", json={"email": email, "name": "B", "password": "bench-password"}
    )
    uid = made.json()["id"]
    token = app.login(email, "bench-password")
    url = f"{app.base}/users/{uid}" + ("" if reads_cached else "/settings")
    with Load(lambda c: c.get(url, headers=token), clients=8) as load:
        time.sleep(0.5)
        lines_before = len(app.log.read_text().splitlines())
        switch.on()
        fault = time.monotonic()
        time.sleep(seconds)
        switch.off()
        ended = time.monotonic()
        log = app.log.read_text().splitlines()[lines_before:]
        time.sleep(3)
    # the requests the fault touched: in flight at some moment of it
    during = [o for o in load.outcomes if o.started < ended and o.started + o.seconds > fault]
    back = load.first_success_after(ended)
    return {
        "answers": dict(sorted(Counter(o.status for o in load.outcomes).items())),
        "answers_during": dict(sorted(Counter(o.status for o in during).items())),
        "slowest_during_s": round(max((o.seconds for o in during), default=0.0), 3),
        "back_after_s": round(back, 3) if back is not None else None,
        "log_lines_during": len(log),
        "tracebacks_during": sum(line.count("Traceback") for line in log),
    }


# -- login flood --------------------------------------------------------------------


def login_flood(root: Path, scratch: Path, seconds: float) -> dict[str, Any]:
    app = start("sqlite", scratch / "flood", LogBook(), root=root, **GENEROUS)
    try:
        base_rss = app.rss_peak_kib()
        stop = threading.Event()
        statuses: Counter[int] = Counter()
        health: list[float] = []

        def attacker(i: int) -> None:
            with httpx.Client(timeout=120) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    who = {"email": f"x{i}-{n}@example.com", "password": "wrong-password"}
                    statuses[client.post(f"{app.base}/auth/token", json=who).status_code] += 1

        def prober() -> None:
            with httpx.Client(timeout=120) as client:
                while not stop.is_set():
                    start_at = time.monotonic()
                    client.get(f"{app.base}/health")
                    health.append(time.monotonic() - start_at)
                    time.sleep(0.05)

        threads = [threading.Thread(target=attacker, args=(i,)) for i in range(64)]
        threads.append(threading.Thread(target=prober))
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(180)
        peak = app.rss_peak_kib()
    finally:
        drop(app)
    ordered = sorted(health)
    return {"64_wrong_logins": _flood_figures(statuses, base_rss, peak, ordered)}


def _flood_figures(
    statuses: Counter[int], base_rss: int, peak: int, ordered: list[float]
) -> dict[str, Any]:
    return {
        "logins": dict(sorted(statuses.items())),
        "rss_before_mib": round(base_rss / 1024),
        "rss_peak_mib": round(peak / 1024),
        "health_p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "health_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1)
        if ordered
        else None,
        "health_probes": len(ordered),
    }


# -- the report ---------------------------------------------------------------------


def measure(root: Path, tight: str, quick: bool) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    try:
        return {
            "amplification": amplification(root, scratch),
            "recovery": recovery(root, scratch, tight, 2.0 if quick else 4.0),
            "login_flood": login_flood(root, scratch, 5.0 if quick else 20.0),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for version, figures in results.items():
        lines.append(f"== {version}")
        for scenario, cases in figures.items():
            lines.append(f"  {scenario}")
            for case, values in cases.items():
                shown = ", ".join(f"{k} {v}" for k, v in values.items())
                lines.append(f"    {case}: {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="shorter faults and flood")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    parser.add_argument("--before", metavar="REV", help="also measure this git revision")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    if args.before:
        with worktree(args.before) as old:
            results[f"before ({args.before})"] = measure(old, TIGHT_BEFORE, args.quick)
    results["now"] = measure(ROOT, TIGHT_NOW, args.quick)
    print(json.dumps(results, indent=2) if args.json else report(results))


if __name__ == "__main__":
    main()
