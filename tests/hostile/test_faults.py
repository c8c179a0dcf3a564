"""Faults made for real under load: users-api (PostgreSQL + Redis, the prod overlay)
while its database refuses connections, stalls behind a paused TCP proxy or has its
connections killed, and while Redis stalls.

Every answer is 2xx/4xx/503 within the configured bound (no 500, no reset, no hang),
the service is back within about a second of the fault's end, and the log holds the
outage once with its detail, not a traceback per request.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .load import Load, Outcome
from .proxy import FaultProxy, fault_proxy
from .servers import LogBook, UsersApi, drop, psql, start

#: Tight client-side bounds, so a test waits seconds: connect 1s, statement 1s (so each
#: operation 2s), pool 1s. The bound a caller may wait is the largest, plus the margin
#: a loaded 2-core machine needs.
TIGHT = """
resources:
  db: {config: {connect_timeout: 1s, statement_timeout: 1s, pool_timeout: 1s}}
  redis: {config: {timeout: 500ms, connect_timeout: 500ms, pool_timeout: 500ms}}
"""
BOUND = 2.0 + 1.0
RECOVERY = 1.0 + 0.75  # "within 1 s of the fault ending", and the load's own latency


@pytest.fixture
def services(_postgres_answers: str, _redis_answers: str) -> None:
    """PostgreSQL and Redis must run (skipped, or failed on CI, otherwise)."""


def serve(
    tmp_path: Path,
    book: LogBook,
    *,
    postgres: str = "127.0.0.1:5432",
    redis_url: str = "redis://127.0.0.1:6379/0",
) -> UsersApi:
    folder = tmp_path / "app"
    return start("postgresql", folder, book, redis_url, postgres, overlay=TIGHT)


def check(outcomes: list[Outcome], allowed: set[int]) -> Counter[int]:
    statuses = Counter(o.status for o in outcomes)
    assert outcomes, "no request was made"
    assert set(statuses) <= allowed, statuses
    slowest = max(o.seconds for o in outcomes)
    assert slowest <= BOUND, f"a request took {slowest:.2f}s"
    return statuses


def settings_url(app: UsersApi) -> tuple[str, dict[str, str]]:
    """A route that reads the database on every call (no cache), and a token for it."""
    email = f"load-{time.monotonic_ns()}@example.com"
    password = app.book.secret(f"pw-{time.monotonic_ns()}-load")
    made = httpx.post(
        f"{app.base}/users", json={"email": email, "name": "Load", "password": password}
    )
    assert made.status_code == 201, made.text
    return f"{app.base}/users/{made.json()['id']}/settings", app.login(email, password)


def answered_during(load: Load, start: float, end: float) -> Counter[int]:
    """The statuses of the requests sent from ``start`` and answered before ``end`` (the
    fault's end): a probe sent just before the fault ends may rightly succeed."""
    return Counter(o.status for o in load.between(start, end) if o.started + o.seconds < end)


def outage_lines(app: UsersApi, code: str) -> list[str]:
    """The edge's lines about ``code`` (the first with its detail, then counts), after
    checking that no per-call line about it carries a traceback."""
    lines = [line for line in app.log.read_text().splitlines() if code in line]
    assert not [line for line in lines if '"exception"' in line], "a traceback per call"
    return [line for line in lines if '"logger": "assemble.http"' in line]


@pytest.fixture
def db_app(services: None, tmp_path: Path, log_book: LogBook) -> Iterator[UsersApi]:
    app = serve(tmp_path, log_book)
    yield app
    drop(app)


def test_a_database_refusing_connections(db_app: UsersApi) -> None:
    url, token = settings_url(db_app)
    with Load(lambda c: c.get(url, headers=token), clients=8) as load:
        time.sleep(0.5)
        psql(f'ALTER DATABASE "{db_app.database}" ALLOW_CONNECTIONS false')
        psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{db_app.database}' AND pid <> pg_backend_pid()"
        )
        fault = time.monotonic()
        time.sleep(3)
        psql(f'ALTER DATABASE "{db_app.database}" ALLOW_CONNECTIONS true')
        ended = time.monotonic()
        time.sleep(2)
    statuses = check(load.outcomes, {200, 503})
    during = answered_during(load, fault + 0.5, ended)
    assert during[503] > 50 and during[200] == 0, during  # fast 503s, not a few slow ones
    back = load.first_success_after(ended)
    assert back is not None and back <= RECOVERY, back
    assert statuses[503] > 100
    lines = outage_lines(db_app, "db.unavailable")
    assert 1 <= len(lines) <= 6, lines  # each kind once with its detail, then counts
    assert any("not currently accepting connections" in line for line in lines)
    assert "Traceback" not in db_app.log.read_text()


def test_a_stalled_database_behind_a_paused_proxy(
    services: None, tmp_path: Path, log_book: LogBook
) -> None:
    with fault_proxy("127.0.0.1", 5432) as proxy:
        app = serve(tmp_path, log_book, postgres=proxy.url_host)
        try:
            stalled(app, proxy)
        finally:
            drop(app)


def stalled(app: UsersApi, proxy: FaultProxy) -> None:
    url, token = settings_url(app)
    with Load(lambda c: c.get(url, headers=token), clients=8) as load:
        time.sleep(0.5)
        proxy.pause()  # TCP open, no answer
        fault = time.monotonic()
        time.sleep(4)
        proxy.resume()
        ended = time.monotonic()
        time.sleep(2)
    check(load.outcomes, {200, 503})
    during = answered_during(load, fault + BOUND, ended)
    assert during[503] > 20 and during[200] == 0, during
    back = load.first_success_after(ended)
    assert back is not None and back <= RECOVERY, back
    assert "Traceback" not in app.log.read_text()


def test_connections_killed_under_load(db_app: UsersApi) -> None:
    url, token = settings_url(db_app)
    with Load(lambda c: c.get(url, headers=token), clients=8) as load:
        time.sleep(0.5)
        for _ in range(10):
            psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{db_app.database}' AND pid <> pg_backend_pid()"
            )
            time.sleep(0.2)
        ended = time.monotonic()
        time.sleep(1.5)
    statuses = check(load.outcomes, {200, 503})
    assert statuses[200] > statuses[503]  # most calls reconnect at once (pre-ping)
    back = load.first_success_after(ended)
    assert back is not None and back <= RECOVERY, back
    assert "Traceback" not in db_app.log.read_text()


def test_a_stalled_redis_behind_a_paused_proxy(
    services: None, tmp_path: Path, log_book: LogBook
) -> None:
    with fault_proxy("127.0.0.1", 6379) as proxy:
        app = serve(tmp_path, log_book, redis_url=f"redis://{proxy.url_host}/0")
        try:
            admin = app.admin()

            def mixed(c: httpx.Client) -> httpx.Response:
                # a cached read (cache.redis fails open) and a rate-limited write
                # (rate_limit on Redis fails closed: 503)
                if time.monotonic_ns() % 2:
                    return c.get(f"{app.base}/users/1", headers=admin)
                return c.post(f"{app.base}/posts", json={"title": "t", "body": "b"}, headers=admin)

            with Load(mixed, clients=8) as load:
                time.sleep(0.5)
                proxy.pause()
                fault = time.monotonic()
                time.sleep(3)
                proxy.resume()
                ended = time.monotonic()
                time.sleep(2)
            check(load.outcomes, {200, 201, 429, 503})
            reads = [o for o in load.between(fault + 1, ended) if o.status in (200, 503)]
            assert any(o.status == 200 for o in reads), "the cache failed open: reads go on"
            back = load.first_success_after(ended)
            assert back is not None and back <= RECOVERY, back
            assert "Traceback" not in app.log.read_text()
        finally:
            drop(app)
