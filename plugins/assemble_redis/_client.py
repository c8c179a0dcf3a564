"""``redis.client``: a ``redis.asyncio.Redis``, checked with PING at init, closed at dispose.

redis-py's asyncio client runs on asyncio only: on trio, init fails with a clear error.
The ``redis`` library is the optional extra ``assemble[redis]``; this module imports it
only when a client is made, so the plugin loads without it (``check`` reports it).

Every wait is bounded on the client side: connecting (``connect_timeout``), each
command (``timeout``) and waiting for a pooled connection (``pool_timeout``); a failed
connection is retried once, at once (redis-py 8 would retry ten times with backoff,
which turns a stalled Redis into a minute-long wait). Failures to reach Redis are
classified (``_bounded.py``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import assembler
import runner
from runner.errors import RunnerError

DEFAULT_URL = "redis://127.0.0.1:6379/0"
SCHEMES = ("redis", "rediss", "unix")
PING_TIMEOUT = 10.0  # seconds for the whole check at init, retries included


@dataclass(frozen=True)
class RedisConfig:
    """``redis.client``'s config."""

    url: str = assembler.option(
        DEFAULT_URL,
        doc="redis://[[user]:password@]host[:port][/db], rediss:// (TLS) or "
        "unix:///path.sock; query options (client_name=...) are passed to redis-py",
    )
    connect_timeout: assembler.Duration = assembler.option(
        "2s", doc="the longest opening a connection may take"
    )
    timeout: assembler.Duration = assembler.option(
        "2s",
        doc="the longest one command may wait for Redis's answer; past it: "
        "`<id>.unavailable` (503)",
    )
    pool_timeout: assembler.Duration = assembler.option(
        "2s",
        doc="the longest a command waits for a free connection when "
        "`max_connections` are busy; past it: `<id>.unavailable` (503)",
    )
    max_connections: int = assembler.option(
        100, doc="connections the client keeps at most", minimum=1, maximum=100000
    )


class RedisClientError(RunnerError):
    """``redis.client`` could not start: Redis did not answer, or the backend is not asyncio."""

    code = "redis.client_failed"


def safe_url(url: str) -> str:
    """``url`` with its password and credential parameters hidden (for messages and logs)."""
    return assembler.mask_url(url)


def check(config: Any, report: assembler.ConfigReport) -> None:
    report.require_library(
        "redis.client", "redis.asyncio", extra="redis", library="the `redis` library"
    )
    url = (config or {}).get("url", DEFAULT_URL)
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in SCHEMES:
        report(
            f"{safe_url(url)!r} is not a Redis URL",
            at=("url",),
            hint="write redis://host:port/db, rediss://... (TLS) or unix:///path/redis.sock",
        )


def require_asyncio(what: str) -> None:
    """:class:`RedisClientError` unless running on asyncio (redis-py's asyncio client)."""
    assembler.require_asyncio(RedisClientError, what, "redis-py's client runs on asyncio only")


async def make_client(config: RedisConfig) -> Any:
    """Init: connect, PING (bounded), and hand out the client."""
    require_asyncio("redis.client")
    assembler.require_library(
        "redis.client",
        "redis.asyncio",
        extra="redis",
        library="the `redis` library",
        error=RedisClientError,
    )
    from redis.asyncio import BlockingConnectionPool
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    from ._bounded import RedisClient

    url, timeout = config.url, config.timeout
    try:
        # A blocking pool: past max_connections a command waits for a free connection
        # (up to pool_timeout) instead of failing with "Too many connections".
        pool = BlockingConnectionPool.from_url(
            url,
            socket_connect_timeout=config.connect_timeout,
            socket_timeout=timeout,
            max_connections=config.max_connections,
            timeout=config.pool_timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
    except ValueError as exc:
        raise RedisClientError(
            f"redis.client: invalid url {safe_url(url)!r}: {exc}",
            hint="write redis://host:port/db, rediss://... (TLS) or unix:///path/redis.sock",
        ) from None
    client = cast(RedisClient, RedisClient.from_pool(pool))  # its close closes the pool
    client.resource = getattr(runner.current_resource.try_use(), "id", "redis")
    client.timeout = timeout
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            await client.ping()
    except Exception as exc:
        await client.aclose()
        detail = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)
        detail = getattr(exc, "detail", "") or detail
        raise RedisClientError(
            f"redis.client cannot reach Redis at {safe_url(url)}: {detail}",
            hint="start Redis, or fix `url` (host, port, password, TLS)",
        ) from None
    return client


async def close_client(client: Any) -> None:
    await client.aclose()


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="redis.client",
            kind="resource",
            config=RedisConfig,
            init=make_client,
            dispose=close_client,
            check=check,
            description="a redis.asyncio.Redis client (asyncio only), PINGed at init",
        )
    ]
