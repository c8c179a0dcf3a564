"""``cache.redis``: task results as JSON in Redis, shared by every process of an app.

Every Redis operation is bounded (``timeout``, by default :data:`OP_TIMEOUT`); a Redis
that is down, paused or slow never holds a call up for longer. With ``fail_open`` (the
default) the task then runs uncached and one warning is logged per outage; without it
the call fails with :class:`CacheUnavailable` (HTTP 503).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import assembler
import runner
from assemble_redis import Outage, describe, redis_errors
from runner.errors import RunnerError

from ._keys import INVALIDATE_ON_DOC, INVALIDATE_ON_SCHEMA, cache_key, digest, json_text

LOG = logging.getLogger("assemble.cache.redis")
OP_TIMEOUT = 0.05  # seconds: the bound on each Redis GET and SET
RETRY_AFTER = 1.0  # seconds: after a failure, Redis is left alone this long
INVALIDATE_TIMEOUT = 1.0  # seconds: the least bound on an invalidating event's SET
DEFAULT_PREFIX = "assemble:cache:"


@dataclass(frozen=True)
class RedisCacheConfig:
    """``cache.redis``'s config."""

    ttl: assembler.Duration = assembler.option(
        doc="how long a result stays cached: seconds, or 250ms, 60s, 5m, 1h"
    )
    prefix: str = assembler.option(
        DEFAULT_PREFIX,
        doc="start of every Redis key this cache writes "
        "(the key is prefix + task id + ':' + a SHA-256 of the call's key)",
    )
    redis: str = assembler.option(
        "redis",
        doc="id of the resource that holds the redis.asyncio.Redis client (a redis.client)",
        minLength=1,
    )
    key: Callable[[Any], str] | None = assembler.option(
        None,
        doc="import path of key(input) -> str; default: the canonical JSON of "
        "the input plus the caller's auth subject",
        schema={"type": "string"},
    )
    invalidate_on: list[str] | None = assembler.option(
        None, doc=INVALIDATE_ON_DOC, schema=INVALIDATE_ON_SCHEMA
    )
    timeout: assembler.Duration | None = assembler.option(
        None,
        doc="the bound on each Redis operation (default 50ms): past it, "
        "Redis counts as unavailable (see fail_open); raise it for a distant Redis, or "
        "where pauses of the process (a GC on a big heap) exceed it",
    )
    fail_open: bool = assembler.option(
        True,
        doc="when Redis fails: true runs the task uncached (one warning per "
        "outage); false fails the call with HTTP 503",
    )


class CacheUnavailable(RunnerError):
    """``cache.redis`` with ``fail_open: false`` could not reach Redis.

    The answer names the task; Redis's own account (host, port) is in ``detail``, for
    the log only."""

    code = "cache.unavailable"
    http_status = 503

    def __init__(self, task: str, cause: BaseException | None, timeout: float = 0.0) -> None:
        self.task, self.retry_after = task, 1.0
        self.detail = describe(cause, timeout or OP_TIMEOUT) if cause is not None else ""
        super().__init__(
            f"the Redis cache of {task!r} is unavailable",
            hint="retry shortly; or set `fail_open: true` to run the task uncached while "
            "Redis is down",
        )


def _check(config: Any, report: assembler.ConfigReport) -> None:
    config = config or {}
    report.require_library(
        "cache.redis", "redis.asyncio", extra="redis", library="the `redis` library"
    )
    if "ttl" in config and assembler.duration(config["ttl"]) < 0.001:
        report("ttl must be at least 1ms", at=("ttl",), hint="write e.g. ttl: 60s")
    if "timeout" in config and assembler.duration(config["timeout"]) < 0.001:
        report("timeout must be at least 1ms", at=("timeout",), hint="write e.g. timeout: 200ms")


class RedisCache:
    """One ``cache.redis`` use: its own outage state; the entries live in Redis. Called
    as the middleware (``await cache(call, config, redis)``).

    With ``invalidate_on``, a generation kept in Redis is replaced by a new random one by
    the invalidating events, from any process. Each entry is then stored as
    ``{generation} {json}``; a read fetches the entry and the current generation in one
    MGET, and an entry of another generation is a miss. A call that read its data before
    an invalidation stores its result under the generation it started with, so that
    result is never served: nothing stale outlives the event. A missing generation (a
    fresh Redis, an eviction, a failover) is started anew at random, so no entry from
    before it can match: a counter restarting at 1 could.
    """

    def __init__(self, config: RedisCacheConfig) -> None:
        self.ttl_ms = max(1, round(config.ttl * 1000))
        self.prefix, self.key_fn, self.fail_open = config.prefix, config.key, config.fail_open
        # Without `timeout`, the module's OP_TIMEOUT, read at each call (tests adjust it).
        self.bound = config.timeout or 0.0
        self.health = Outage(
            LOG,
            "cache.redis",
            "calls run uncached" if self.fail_open else "calls fail (503)",
            "; caching resumed",
            self.bound or OP_TIMEOUT,
            RETRY_AFTER,
        )
        self.errors = redis_errors()
        self.generation_key = f"{self.prefix}@generation" if config.invalidate_on else None
        self.pending = False  # an invalidation this process could not send yet
        #: The hook assemble_cache registers for ``invalidate_on`` (None without it).
        self.invalidate = self._invalidate if self.generation_key is not None else None

    async def __call__(self, call: runner.TaskCall, config: Any, redis: Any) -> Any:
        task = call.task.id
        key = cache_key(task, call.input, self.key_fn)
        if key is None:  # an input that has no JSON form: not cached
            return await call.next()
        health, bound, errors = self.health, self.bound, self.errors
        if self.pending and health.usable():  # send it before anything is read
            try:
                await self._new_generation(redis, bound or OP_TIMEOUT)
            except errors as exc:
                health.failed(task, exc)
            else:
                self.pending = False
        if not health.usable() or self.pending:
            if not self.fail_open:
                raise CacheUnavailable(task, None)
            return await call.next()
        name = f"{self.prefix}{task}:{digest(key)}"
        try:
            async with asyncio.timeout(bound or OP_TIMEOUT):
                tag, raw = await self._read(redis, name)
        except errors as exc:
            health.failed(task, exc)
            if not self.fail_open:
                raise CacheUnavailable(task, exc, bound) from exc
            return await call.next()
        health.ok()
        if raw is not None and tag is not None:
            stored, _, body = _bytes(raw).partition(b" ") if tag else (b"", b"", raw)
            if stored == tag:
                try:
                    return json.loads(body)
                except ValueError:
                    pass  # not a value this cache wrote: compute and overwrite it
        result = await call.next()  # an error propagates and nothing is cached
        if tag is not None:
            await self._store(redis, task, name, tag, result)
        return result

    async def _store(self, redis: Any, task: str, name: str, tag: bytes, result: Any) -> None:
        """Keep ``result`` (if it has a JSON form); a failure only counts against Redis."""
        text = json_text(result)
        if text is None or not self.health.usable():
            return
        try:
            async with asyncio.timeout(self.bound or OP_TIMEOUT):
                value = tag + b" " + text.encode() if tag else text
                await redis.set(name, value, px=self.ttl_ms)
        except self.errors as exc:
            self.health.failed(task, exc)  # the result is there: return it anyway
        else:
            self.health.ok()

    async def _new_generation(self, redis: Any, wait: float) -> None:
        async with asyncio.timeout(wait):
            await redis.set(self.generation_key, _new_generation())

    async def _read(self, redis: Any, name: str) -> tuple[bytes | None, Any]:
        """``(tag, raw)``: the entry, and what a result is stored under (``b""`` without
        generations; ``None``: the generation is not known, store nothing)."""
        if self.generation_key is None:
            return b"", await redis.get(name)
        current, raw = await redis.mget(self.generation_key, name)
        if current is None:  # none yet: start one (or learn another's next time)
            fresh = _new_generation()
            if await redis.set(self.generation_key, fresh, nx=True):
                current = fresh
        return (None if current is None else _bytes(current)), raw

    async def _invalidate(self, emission: runner.EventEmission, redis: Any) -> None:
        wait = max(INVALIDATE_TIMEOUT, self.bound)
        try:
            await self._new_generation(redis, wait)
        except self.errors as exc:
            # The event happened: failing its emitter would not undo it. This process
            # reads nothing cached until the new generation is set; other processes may
            # serve an older entry until its ttl.
            self.pending = True
            LOG.error(
                "cache.redis: %r could not invalidate the entries under %r (%s); this "
                "process runs its calls uncached until Redis takes the invalidation, "
                "other processes may serve older entries for up to their ttl",
                emission.id,
                self.prefix,
                describe(exc, wait),
            )


def _new_generation() -> bytes:
    return secrets.token_hex(8).encode()


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="cache.redis",
            kind="middleware",
            config=RedisCacheConfig,
            factory=RedisCache,
            dependencies=lambda config: {"redis": config.redis},
            imports=("key",),
            check=_check,
            description="caches task results as JSON in Redis (fail-open, one warning per outage)",
        )
    ]
