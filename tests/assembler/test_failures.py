"""FailureLog: an outage logs each kind of failure once in full, then a count per interval."""

from __future__ import annotations

import logging

import pytest

from assembler import FailureLog
from runner.errors import ResourceUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def records() -> list[logging.LogRecord]:
    return []


@pytest.fixture
def log(records: list[logging.LogRecord]) -> logging.Logger:
    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("test.failures")
    logger.handlers[:] = [Keep()]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def down() -> ResourceUnavailable:
    return ResourceUnavailable(
        "db", "the database refuses connections", detail="ConnectionRefusedError: 127.0.0.1:5"
    )


def test_an_outage_logs_the_first_failure_with_its_detail_then_one_count_per_interval(
    log: logging.Logger, records: list[logging.LogRecord]
) -> None:
    clock = Clock()
    failures = FailureLog(log, interval=10, clock=clock)
    for i in range(2300):  # 8 s of failures, one every 3.5 ms
        clock.now += 0.0035
        failures.failed("GET /users/{id}", f"r{i}", down())
    assert len(records) == 1
    first = records[0].getMessage()
    assert first == (
        "GET /users/{id} failed (request r0): db.unavailable: 'db' is unavailable: "
        "the database refuses connections (ConnectionRefusedError: 127.0.0.1:5)"
    )
    assert records[0].request_id == "r0"  # type: ignore[attr-defined]
    clock.now += 3  # still failing: 11 s into the outage
    failures.failed("GET /users/{id}", "r2300", down())
    assert len(records) == 2
    assert records[1].getMessage() == (
        "GET /users/{id} failed 2,300 more times with db.unavailable in the last 11s "
        "(the latest: request r2300)"
    )


def test_each_kind_and_place_is_its_own_and_flush_writes_what_is_pending(
    log: logging.Logger, records: list[logging.LogRecord]
) -> None:
    clock = Clock()
    failures = FailureLog(log, interval=10, clock=clock)
    failures.failed("GET /a", "1", down())
    failures.failed("GET /b", "2", down())
    failures.failed("GET /a", "3", KeyError("x"))
    failures.failed("GET /a", "4", KeyError("y"))
    assert [r.levelname for r in records] == ["WARNING", "WARNING", "ERROR"]
    assert records[2].exc_info is not None  # the unexpected one keeps its traceback
    failures.flush()
    assert records[-1].getMessage() == (
        "GET /a failed 1 more time with KeyError in the last 1s (the latest: request 4)"
    )
    failures.flush()  # nothing pending: nothing written
    assert len(records) == 4


def test_a_kind_quiet_for_an_interval_is_written_in_full_again(
    log: logging.Logger, records: list[logging.LogRecord]
) -> None:
    clock = Clock()
    failures = FailureLog(log, interval=10, clock=clock)
    failures.failed("GET /a", "1", down())
    failures.failed("GET /a", "2", down())
    clock.now += 60  # the outage ended; a new one starts
    failures.failed("GET /a", "3", down())
    messages = [r.getMessage() for r in records]
    assert messages[1].startswith("GET /a failed 1 more time with db.unavailable")
    assert messages[2].startswith("GET /a failed (request 3): db.unavailable")


def test_the_kinds_tracked_are_bounded(log: logging.Logger) -> None:
    failures = FailureLog(log, max_kinds=8)
    for i in range(100):
        failures.failed(f"GET /{i}", str(i), down())
    assert len(failures._episodes) == 8
