"""``rate_limit``: a token bucket per key; over the limit -> ``RateLimited`` (HTTP 429).

Each bucket holds up to ``max_requests`` tokens and refills at ``max_requests / window``
tokens per second; a call takes one token. Buckets are per task and per key (``key(input)``,
default one bucket). ``backend: memory`` keeps them in this process (per middleware use);
``backend: redis`` keeps them in Redis, shared by every process, updated by one atomic Lua
script that reads the server's clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import assembler
import runner
from assemble_redis import Outage, describe, redis_errors
from runner.errors import RateLimited, RunnerError

LOG = logging.getLogger("assemble.rate_limit")
DEFAULT_PREFIX = "assemble:rate_limit:"
REDIS_TIMEOUT = 2.0  # seconds: the bound on one script call (pool wait included)
RETRY_AFTER = 1.0  # seconds: after a Redis failure, calls are refused at once this long
MAX_KEYS = 100_000  # memory backend: buckets kept at most, per use (least recently used go)


@dataclass(frozen=True)
class RateLimitConfig:
    """``rate_limit``'s config."""

    max_requests: int = assembler.option(
        doc="calls allowed per window (the bucket's capacity)", minimum=1
    )
    window: assembler.Duration = assembler.option(
        doc="time in which max_requests tokens refill: seconds, or 250ms, 60s, 5m, 1h"
    )
    key: Callable[[Any], Any] | None = assembler.option(
        None,
        doc="import path of key(input) -> str: one bucket per value "
        "(per user, per IP, ...); default: one bucket",
        schema={"type": "string"},
    )
    backend: Literal["memory", "redis"] = assembler.option(
        "memory",
        doc="memory: buckets in this process; redis: shared by every process "
        "(needs a redis.client)",
    )
    redis: str = assembler.option(
        "redis",
        doc="backend redis: id of the resource holding the redis.asyncio.Redis client",
        minLength=1,
    )
    prefix: str = assembler.option(
        DEFAULT_PREFIX,
        doc="backend redis: start of every Redis key (then task id, a "
        "digest of this use's limit, and the key)",
    )


# KEYS[1]: the bucket. ARGV[1]: capacity (tokens), ARGV[2]: window (microseconds); the
# bucket refills capacity tokens per window. Returns {allowed (0/1), retry after (us)}.
# The time is the server's (TIME), so clients' clocks do not matter; every write sets a
# TTL of the time the bucket takes to refill fully, after which it is the same as absent.
LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(capacity, tokens + elapsed * capacity / window)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) * window / capacity)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%d', now))
local ttl = math.ceil((capacity - tokens) * window / capacity / 1000)
if ttl < 1 then ttl = 1 end
redis.call('PEXPIRE', KEYS[1], ttl)
return {allowed, retry}
"""
LUA_SHA = hashlib.sha1(LUA.encode()).hexdigest()


class RateLimiterUnavailable(RunnerError):
    """``rate_limit`` with ``backend: redis`` could not reach Redis: calls are refused.

    The answer says which task's limiter failed; Redis's own account (host, port) is in
    ``detail``, for the log only."""

    code = "rate_limit.unavailable"
    http_status = 503

    def __init__(self, task: str, cause: BaseException | None) -> None:
        self.task, self.retry_after = task, RETRY_AFTER
        self.detail = describe(cause, REDIS_TIMEOUT) if cause is not None else ""
        super().__init__(
            f"the rate limiter of {task!r} cannot reach Redis",
            hint="retry shortly; calls are refused while the limit cannot be checked",
        )


class MemoryBuckets:
    """Token buckets in this process, least recently used first.

    A bucket untouched for a whole window is full again, the same as an absent one: such
    buckets are dropped from the front as new ones come, so memory holds only the keys
    seen within one window (and never more than ``max_keys``).
    """

    def __init__(self, capacity: int, window: float, max_keys: int = MAX_KEYS) -> None:
        self.capacity, self.window, self.max_keys = float(capacity), window, max_keys
        self.rate = capacity / window  # tokens per second
        self.buckets: OrderedDict[Any, tuple[float, float]] = OrderedDict()  # tokens, time

    def take(self, key: Any, now: float | None = None) -> float:
        """Take a token: 0.0 if one was there, else the seconds until one will be."""
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self.buckets[key] = (tokens, now)
        self.prune(now)
        return wait

    def prune(self, now: float) -> None:
        buckets = self.buckets
        while buckets:
            oldest = next(iter(buckets))
            if now - buckets[oldest][1] < self.window and len(buckets) <= self.max_keys:
                break
            del buckets[oldest]


def _check(config: Any, report: assembler.ConfigReport) -> None:
    config = config or {}
    typed = assembler.from_config(RateLimitConfig, config)  # checks run on schema-valid configs
    if typed.window < 0.001:
        report("window must be at least 1ms", at=("window",), hint="write e.g. window: 60s")
    if typed.backend == "redis":
        report.require_library(
            "rate_limit with backend: redis",
            "redis.asyncio",
            extra="redis",
            library="the `redis` library",
            at=("backend",),
        )
        return
    for key in ("redis", "prefix"):
        if key in config:
            report(
                f"{key!r} is only used with backend: redis",
                at=(key,),
                hint=f"set `backend: redis`, or drop `{key}`",
            )


def _dependencies(config: RateLimitConfig) -> dict[str, Any]:
    return {"redis": config.redis} if config.backend == "redis" else {}


def _use_id(config: RateLimitConfig) -> str:
    """Tells apart two limits on one task (10 per second and 1000 per hour, say)."""
    key = config.key
    name = ""
    if key is not None:
        name = f"{getattr(key, '__module__', '')}:{getattr(key, '__qualname__', repr(key))}"
    text = json.dumps([config.max_requests, config.window, name])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def make_rate_limit(config: RateLimitConfig) -> Callable[..., Awaitable[Any]]:
    capacity, window, key_fn = config.max_requests, config.window, config.key

    def key_of(call: runner.TaskCall) -> str:
        return "" if key_fn is None else str(key_fn(call.input))

    if config.backend != "redis":
        buckets = MemoryBuckets(capacity, window)

        async def rate_limit(call: runner.TaskCall, config: Any) -> Any:
            wait = buckets.take((call.task.id, key_of(call)))
            if wait > 0.0:
                raise RateLimited(call.task.id, wait)
            return await call.next()

        return rate_limit

    prefix = config.prefix
    use = _use_id(config)
    args = (capacity, max(1, round(window * 1_000_000)))
    errors = redis_errors()
    outage = Outage(LOG, "rate_limit", "calls are refused (503)", "", REDIS_TIMEOUT, RETRY_AFTER)

    async def rate_limit_redis(call: runner.TaskCall, config: Any, redis: Any) -> Any:
        task = call.task.id
        name = f"{prefix}{task}:{use}:{key_of(call)}"
        if not outage.usable():
            raise RateLimiterUnavailable(task, None)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                allowed, retry_us = await _take(redis, name, args)
        except errors as exc:
            outage.failed(task, exc)
            raise RateLimiterUnavailable(task, exc) from exc
        outage.ok()
        if not allowed:
            raise RateLimited(task, max(int(retry_us), 1) / 1_000_000)
        return await call.next()

    return rate_limit_redis


async def _take(redis: Any, name: str, args: tuple[int, int]) -> tuple[int, int]:
    """Run the script by its SHA; load it with EVAL the first time a server lacks it."""
    from redis.exceptions import NoScriptError

    try:
        result = await redis.evalsha(LUA_SHA, 1, name, *args)
    except NoScriptError:
        result = await redis.eval(LUA, 1, name, *args)  # EVAL also caches the script
    allowed, retry = result
    return int(allowed), int(retry)


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="rate_limit",
            kind="middleware",
            config=RateLimitConfig,
            factory=make_rate_limit,
            dependencies=_dependencies,
            imports=("key",),
            check=_check,
            description="token bucket per task and key; over the limit -> RateLimited "
            "(HTTP 429); memory or Redis backend",
        )
    ]
