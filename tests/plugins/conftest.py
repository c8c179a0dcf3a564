"""Fixtures shared by the plugin tests (the services, Redis, PostgreSQL and NATS, are
in ``tests/conftest.py``, shared with the hostile suite)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def plugin_records() -> Iterator[list[logging.LogRecord]]:
    """Every record the plugins log under ``assemble.*``, even while an app's logger holds
    them (it stops their propagation to the root logger, where caplog listens)."""
    collect, parent = _Collect(), logging.getLogger("assemble")
    parent.addHandler(collect)
    yield collect.records
    parent.removeHandler(collect)
