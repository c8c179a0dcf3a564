"""``cache.memory``: an in-process LRU with TTL; concurrent misses on one key run the task once."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

import assembler
import runner

from ._keys import INVALIDATE_ON_DOC, INVALIDATE_ON_SCHEMA, cache_key, json_text


@dataclass(frozen=True)
class MemoryCacheConfig:
    """``cache.memory``'s config."""

    ttl: assembler.Duration = assembler.option(doc="how long a result is served from the cache")
    max_entries: int = assembler.option(
        1000, doc="the LRU bound: the least recently used entry goes first", minimum=1
    )
    key: Callable[[Any], str] | None = assembler.option(
        None,
        doc="import path of `key(input) -> str`; default: the canonical JSON "
        "of the input plus the auth principal's subject",
        schema={"type": "string"},
    )
    invalidate_on: list[str] | None = assembler.option(
        None, doc=INVALIDATE_ON_DOC, schema=INVALIDATE_ON_SCHEMA
    )


class _Flight:
    """One in-progress miss; callers that miss the same key meanwhile wait for it."""

    __slots__ = ("done", "error", "ok", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.ok = False
        self.value: Any = None
        self.error: BaseException | None = None


class MemoryCache:
    """Per middleware use: ``entries`` (key -> (expires_at, value)) in LRU order."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self.entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.flights: dict[str, _Flight] = {}
        self.generation = 0  # bumped by invalidate(): older results are not stored

    def invalidate(self) -> None:
        """Drop every entry; calls in flight now neither store their result nor take
        new callers (their data may predate what the invalidating event changed)."""
        self.entries.clear()
        self.flights.clear()
        self.generation += 1

    def get(self, key: str) -> tuple[bool, Any]:
        hit = self.entries.get(key)
        if hit is None:
            return False, None
        if hit[0] <= time.monotonic():
            del self.entries[key]
            return False, None
        self.entries.move_to_end(key)
        value = hit[1]
        # A JSON result is kept as its text and decoded per hit: each caller gets its
        # own copy (faster than deepcopy), so none can change what the next one sees.
        return True, json.loads(value.text) if type(value) is _Json else value

    def put(self, key: str, value: Any) -> None:
        self.entries[key] = (time.monotonic() + self.ttl, _stored(value))
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    async def through(self, key: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        while True:
            found, value = self.get(key)
            if found:
                return value
            flight = self.flights.get(key)
            if flight is None:
                break
            await flight.done.wait()
            if flight.ok:
                return flight.value
            if flight.error is not None:
                # The same failure for each caller that shared the miss, but a copy of
                # its own: re-raising one object from many tasks would pile every
                # caller's frames onto one traceback.
                raise _fresh(flight.error) from flight.error.__cause__
            # the leader was cancelled: its caller left, ours did not; take over
        flight = self.flights[key] = _Flight()
        generation = self.generation
        try:
            value = await compute()
        except Exception as exc:
            flight.error = exc  # shared with current waiters, never cached
            raise
        else:
            flight.ok, flight.value = True, value
            if generation == self.generation:
                self.put(key, value)
            return value
        finally:
            if self.flights.get(key) is flight:
                del self.flights[key]
            flight.done.set()


_IMMUTABLE = (str, int, float, bool, bytes, type(None))


class _Json:
    """A cached mutable result, as canonical JSON text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _stored(value: Any) -> Any:
    """What the cache keeps: immutables as they are, JSON results as text.

    A result that does not survive a JSON round trip unchanged (an object, a tuple) is
    kept as it is and shared between callers: treat such results as read-only.
    """
    if isinstance(value, _IMMUTABLE):
        return value
    text = json_text(value)
    return value if text is None else _Json(text)


def _fresh(error: BaseException) -> BaseException:
    """A copy of ``error`` (same class, args, attributes and cause) with no traceback."""
    try:
        copy = type(error).__new__(type(error), *error.args)
        copy.args = error.args
        copy.__dict__.update(error.__dict__)
    except Exception:  # an exception class that cannot be rebuilt: share it after all
        return error
    copy.__context__ = error.__context__
    return copy


def make_memory_cache(config: MemoryCacheConfig) -> Callable[..., Awaitable[Any]]:
    cache = MemoryCache(config.ttl, config.max_entries)
    key_fn = config.key

    async def cache_memory(call: runner.TaskCall, config: Any) -> Any:
        key = cache_key(call.task.id, call.input, key_fn)
        if key is None:
            return await call.next()
        found, value = cache.get(key)  # the hot path: a hit needs no coroutine of its own
        if found:
            return value
        return await cache.through(key, call.next)

    async def invalidate(emission: runner.EventEmission) -> None:
        cache.invalidate()

    cache_memory.cache = cache  # type: ignore[attr-defined]  # for tests and tools
    cache_memory.invalidate = invalidate  # type: ignore[attr-defined]  # see invalidation_hooks
    return cache_memory


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="cache.memory",
            kind="middleware",
            config=MemoryCacheConfig,
            factory=make_memory_cache,
            imports=("key",),
            description="in-process LRU + TTL cache of results; one run per concurrent miss",
        )
    ]
