"""The client ``redis.client`` hands out: bounded waits, classified failures.

Imported when a client is made (redis-py is the optional extra ``assemble[redis]``).
A command that cannot reach Redis (refused, reset, silent past ``timeout``) raises
:class:`~runner.errors.ResourceUnavailable` naming the resource (``redis.unavailable``,
503 + ``Retry-After``), with redis-py's text (host, port) only in its ``detail``. It is
still an ``OSError`` (a builtin ``ConnectionError``), so code that catches redis-py's
failures as ``OSError`` (``cache.redis``, ``rate_limit``) keeps working.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from runner.errors import ResourceUnavailable

#: What redis-py raises when Redis cannot be reached or does not answer in time.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def unavailable(resource: str, exc: BaseException, timeout: float) -> ResourceUnavailable:
    """The classified error of a command that failed with ``exc``."""
    if isinstance(exc, ResourceUnavailable):
        return exc
    silent = isinstance(exc, RedisTimeoutError | TimeoutError)
    why = f"Redis did not answer within {timeout:g}s" if silent else "Redis cannot be reached"
    first = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
    return ResourceUnavailable(resource, why, detail=detail)


class BoundedPipeline(Pipeline):
    """A pipeline of :class:`RedisClient` whose failures are classified like commands."""

    resource: str = "redis"
    timeout: float = 0.0

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return await super().execute(raise_on_error)
        except UNREACHABLE as exc:
            raise unavailable(self.resource, exc, self.timeout) from exc


class RedisClient(aioredis.Redis):
    """The value of ``redis.client``: a ``redis.asyncio.Redis`` that names its resource
    in its failures. Use it as any redis-py client."""

    resource: str = "redis"
    timeout: float = 0.0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except UNREACHABLE as exc:
            raise unavailable(self.resource, exc, self.timeout) from exc

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = BoundedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.resource, pipe.timeout = self.resource, self.timeout
        return pipe
