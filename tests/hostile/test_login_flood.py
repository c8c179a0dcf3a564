"""A login flood against users-api: password hashing (argon2id, ~0.1 s and 64 MiB each)
is bounded, and logins are rate-limited before any hashing.

The figures (RSS, /health latency over 20 s of 64 concurrent wrong logins) are in
bench/faults.py; these tests assert the mechanisms: the peak memory that the hashing
limit allows (argon2id holds 64 MiB a hash), and the 429s that come before any hashing.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .servers import LogBook, UsersApi, drop, start


def wrong_logins(app: UsersApi, count: int, email: str = "") -> list[httpx.Response]:
    """``count`` concurrent wrong logins (distinct unknown emails unless ``email``)."""
    answers: list[httpx.Response] = []

    def one(i: int) -> None:
        who = email or f"nobody-{i}-{time.monotonic_ns()}@example.com"
        answer = httpx.post(
            f"{app.base}/auth/token", json={"email": who, "password": "wrong-pw"}, timeout=120
        )
        answers.append(answer)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


@pytest.fixture
def generous(tmp_path: Path, log_book: LogBook) -> Iterator[UsersApi]:
    app = start(
        "sqlite",
        tmp_path / "app",
        log_book,
        LOGINS_PER_CLIENT="1000000",
        LOGINS_PER_EMAIL="1000000",
        HASHING_LIMIT="2",
    )
    yield app
    drop(app)


def test_a_flood_of_logins_hashes_two_at_a_time_and_memory_stays_flat(
    generous: UsersApi,
) -> None:
    before = generous.rss_peak_kib()
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            start = time.monotonic()
            httpx.get(f"{generous.base}/health", timeout=30)
            latencies.append(time.monotonic() - start)
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        answers = wrong_logins(generous, 64)
    finally:
        stop.set()
        prober.join()
    assert [a.status_code for a in answers] == [401] * 64  # all answered (limits are off)
    # argon2id takes 64 MiB a hash: 64 at once would take 4 GB (40 worker threads: 2.5 GB).
    # The `hashing` limit of 2 allows one more hash than the admin's at startup.
    grown_mib = (generous.rss_peak_kib() - before) / 1024
    assert grown_mib < 3 * 64, f"RSS peak grew by {grown_mib:.0f} MiB"
    assert statistics.median(latencies) < 0.25, statistics.median(latencies)


def test_logins_are_rate_limited_per_client_and_per_email_before_any_hashing(
    tmp_path: Path, log_book: LogBook
) -> None:
    app = start("sqlite", tmp_path / "app", log_book, LOGINS_PER_CLIENT="20")
    try:
        answers = wrong_logins(app, 40)
        statuses = [a.status_code for a in answers]
        assert statuses.count(429) >= 19 and statuses.count(401) <= 21, statuses
        refused = next(a for a in answers if a.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "runner.rate_limited"
    finally:
        drop(app)
    app = start("sqlite", tmp_path / "other", log_book, LOGINS_PER_EMAIL="5")
    try:
        one = sorted(a.status_code for a in wrong_logins(app, 8, email="admin@example.com"))
        assert one == [401] * 5 + [429] * 3, one
        hashed = [
            line
            for line in app.log.read_text().splitlines()
            if '"task.complete"' in line and ("verify_password" in line or "hash_password" in line)
        ]
        assert len(hashed) <= 5 + 1  # the refused ones never hashed (+1: the admin's own)
    finally:
        drop(app)
