"""Fixtures for every test: both async backends, and the real services.

The service fixtures (Redis at 127.0.0.1:6379, PostgreSQL at :5432, NATS at :4222) skip
a test with the reason when the service does not answer, except on CI (the ``CI``
environment variable is set), where that is a failure: CI must run them.
``redis_prefix`` gives each test its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on both backends the core supports."""
    return str(request.param)


REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def _unavailable(reason: str, service: str = "Redis") -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the {service} tests must run there)", pytrace=False)
    pytest.skip(reason)


def _port_answers(service: str, port: int, start: str) -> None:
    """Skip the test (fail it on CI) unless something listens on 127.0.0.1:``port``."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError as exc:
        _unavailable(f"{service} does not answer at 127.0.0.1:{port} ({exc}); {start}", service)


@pytest.fixture(scope="session")
def _redis_answers() -> str:
    try:
        import redis
    except ImportError:
        _unavailable('the redis library is not installed: pip install "assemble[redis]"')
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        _unavailable(
            f"Redis does not answer at {REDIS_HOST}:{REDIS_PORT} ({exc}); start redis-server"
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_url(_redis_answers: str) -> str:
    """The URL of the test Redis (the test is skipped, or fails on CI, if it is down)."""
    return _redis_answers


@pytest.fixture
def redis_sync(redis_url: str) -> Iterator[Any]:
    """A blocking ``redis.Redis`` (str replies) for a test's own checks and commands."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=10)
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_sync: Any) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = list(redis_sync.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis_sync.delete(*keys)


POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def _postgres_answers() -> str:
    _port_answers("PostgreSQL", 5432, "start it (pg_ctlcluster ... main start)")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(_postgres_answers: str) -> str:
    """The URL of the test PostgreSQL (database `test`, trust auth); skipped (failed on CI)
    when it does not answer."""
    return _postgres_answers


NATS_URL = "nats://127.0.0.1:4222"


@pytest.fixture(scope="session")
def _nats_answers() -> str:
    _port_answers("NATS", 4222, "start nats-server -js")
    return NATS_URL


@pytest.fixture
def nats_url(_nats_answers: str) -> str:
    """The URL of the test NATS server (skipped, or failed on CI, when it does not answer)."""
    return _nats_answers
