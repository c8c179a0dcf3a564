"""cache.redis against a real Redis: hits, TTLs, one user per entry, errors, and outages."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import runner
from assemble_auth import Principal, auth
from assemble_cache import _redis
from runner.errors import RunnerError

from ._apps import app, problems

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's asyncio client runs on asyncio only."""
    return "asyncio"


OP_TIMEOUT = _redis.OP_TIMEOUT  # the product's bound on each Redis GET and SET (50 ms)


@pytest.fixture(autouse=True)
def _wide_op_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled event loop (a full GC late in a CI run) longer than the 50 ms bound reads
    as an outage: the call runs uncached and a hit the test expects is a miss. A healthy
    Redis gets 5 s here; the outage tests put the real bound back (a Redis that is down
    is retried by the client for seconds: only the bound cuts that short)."""
    monkeypatch.setattr(_redis, "OP_TIMEOUT", 5.0)


MODULE = """
import redis.asyncio

RUNS = []

async def lookup(input):
    RUNS.append(input)
    if input.get("fail") and len(RUNS) == 1:
        raise ConnectionError("backend down")
    if input.get("tuple"):
        return (1, 2)
    return {"n": len(RUNS), "id": input.get("id")}

async def whoami(input, auth):
    RUNS.append(input)
    return {"subject": auth.use().subject}

def by_id(input):
    return str(input["id"])

async def closed_port(config):
    client = redis.asyncio.Redis(host="127.0.0.1", port=1)  # nothing listens there
    yield client
    await client.aclose()
"""


def cached_app(
    tmp_path: Path,
    prefix: str,
    url: str = "redis://127.0.0.1:6379/0",
    extra: str = "",
    down: bool = False,
) -> runner.Resource:
    redis = (
        "redis: {init: cr_mod:closed_port}"
        if down
        else f'redis: {{use: redis.client, config: {{url: "{url}"}}}}'
    )
    return app(
        tmp_path,
        f"""
        assemble: 1
        id: cr
        resources:
          {redis}
        middleware:
          cache: {{use: cache.redis, config: {{ttl: 60s, prefix: "{prefix}"{extra}}}}}
        tasks:
          lookup: {{run: cr_mod:lookup, middleware: [cache]}}
          whoami: {{run: cr_mod:whoami, dependencies: {{auth: auth}}, middleware: [cache]}}
        """,
        cr_mod=MODULE,
    )


def runs() -> list[Any]:
    import cr_mod  # type: ignore[import-not-found]

    return cr_mod.RUNS  # type: ignore[no-any-return]


def warnings(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.name == "assemble.cache.redis" and r.levelno == logging.WARNING]


async def test_a_hit_is_served_from_redis_with_the_ttl_set(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_sync: Any
) -> None:
    async with runner.run(cached_app(tmp_path, redis_prefix, redis_url)) as rt:
        first = await rt.run_task("lookup", {"id": 1})
        assert await rt.run_task("lookup", {"id": 1}) == first == {"n": 1, "id": 1}
        assert await rt.run_task("lookup", {"id": 2}) == {"n": 2, "id": 2}
        assert len(runs()) == 2
    keys = sorted(redis_sync.scan_iter(match=f"{redis_prefix}*"))
    assert len(keys) == 2
    assert all(k.startswith(f"{redis_prefix}lookup:") for k in keys)
    values = sorted(json.loads(redis_sync.get(k))["id"] for k in keys)
    assert values == [1, 2]
    for k in keys:
        assert 55_000 < redis_sync.pttl(k) <= 60_000


async def test_one_users_result_is_never_served_to_another(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    async with runner.run(cached_app(tmp_path, redis_prefix, redis_url)) as rt:
        with auth.provide(Principal("alice")):
            assert await rt.run_task("whoami", {}) == {"subject": "alice"}
        with auth.provide(Principal("bob")):
            assert await rt.run_task("whoami", {}) == {"subject": "bob"}
        with auth.provide(Principal("alice")):
            assert await rt.run_task("whoami", {}) == {"subject": "alice"}
    assert len(runs()) == 2  # alice's second call was a hit


async def test_errors_and_non_json_results_are_not_cached(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_sync: Any
) -> None:
    async with runner.run(cached_app(tmp_path, redis_prefix, redis_url)) as rt:
        with pytest.raises(ConnectionError):
            await rt.run_task("lookup", {"id": 1, "fail": True})
        assert list(redis_sync.scan_iter(match=f"{redis_prefix}*")) == []
        assert await rt.run_task("lookup", {"id": 1, "fail": True}) == {"n": 2, "id": 1}
        assert await rt.run_task("lookup", {"id": 1, "fail": True}) == {"n": 2, "id": 1}
        assert await rt.run_task("lookup", {"tuple": True}) == (1, 2)  # not JSON: a tuple
        assert await rt.run_task("lookup", {"tuple": True}) == (1, 2)
    assert len(runs()) == 4
    assert len(list(redis_sync.scan_iter(match=f"{redis_prefix}*"))) == 1


async def test_a_key_function_decides_what_shares_an_entry(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    the_app = cached_app(tmp_path, redis_prefix, redis_url, extra=", key: cr_mod:by_id")
    async with runner.run(the_app) as rt:
        a = await rt.run_task("lookup", {"id": 7, "noise": 1})
        b = await rt.run_task("lookup", {"id": 7, "noise": 2})
    assert a == b == {"n": 1, "id": 7}


async def test_a_paused_redis_costs_a_bounded_wait_and_one_warning(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    redis_sync: Any,
    caplog: pytest.LogCaptureFixture,
    plugin_records: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="assemble.cache.redis")
    async with runner.run(cached_app(tmp_path, redis_prefix, redis_url)) as rt:
        await rt.run_task("lookup", {"id": 0})  # the pool holds a live connection
        monkeypatch.setattr(_redis, "OP_TIMEOUT", OP_TIMEOUT)  # the real bound: 50 ms
        redis_sync.execute_command("CLIENT", "PAUSE", 2000, "ALL")
        times = []
        for i in (1, 2, 3):
            started = time.monotonic()
            assert await rt.run_task("lookup", {"id": i}) == {"n": i + 1, "id": i}
            times.append(time.monotonic() - started)
    # each Redis operation gives up after 50 ms, not when the 2 s pause ends; the bound
    # leaves a stalled loop a second
    assert max(times) < 1.0, times
    assert len(warnings(plugin_records)) == 1
    assert "Redis is unavailable" in warnings(plugin_records)[0].getMessage()


async def test_a_configured_timeout_waits_out_a_pause_the_default_would_not(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    redis_sync: Any,
    plugin_records: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = cached_app(tmp_path, redis_prefix, redis_url, extra=", timeout: 5s")
    async with runner.run(a) as rt:
        assert await rt.run_task("lookup", {"id": 1}) == {"n": 1, "id": 1}
        monkeypatch.setattr(_redis, "OP_TIMEOUT", OP_TIMEOUT)  # the default: 50 ms
        redis_sync.execute_command("CLIENT", "PAUSE", 300, "ALL")
        assert await rt.run_task("lookup", {"id": 1}) == {"n": 1, "id": 1}  # a hit, late
    assert len(runs()) == 1 and warnings(plugin_records) == []


def test_a_timeout_below_1ms_is_a_config_error(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: cr
        resources:
          redis: {use: redis.client}
        middleware:
          cache: {use: cache.redis, config: {ttl: 60s, timeout: 0s}}
        """,
    )
    assert [(code, line) for code, line, _, message in found] == [("ASM603", 6)]
    assert "timeout must be at least 1ms" in found[0][3]


async def test_an_unreachable_redis_warns_once_and_every_call_still_answers(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    plugin_records: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_redis, "RETRY_AFTER", 0.0)  # every call tries Redis again
    monkeypatch.setattr(_redis, "OP_TIMEOUT", OP_TIMEOUT)  # the real bound: 50 ms
    caplog.set_level(logging.WARNING, logger="assemble.cache.redis")
    async with runner.run(cached_app(tmp_path, "p:", down=True)) as rt:
        for i in range(5):
            started = time.monotonic()
            assert await rt.run_task("lookup", {"id": 1}) == {"n": i + 1, "id": 1}
            assert time.monotonic() - started < 1.0  # refused at once; a stall gets 1 s
    assert len(runs()) == 5  # uncached, but answered
    assert len(warnings(plugin_records)) == 1


async def test_a_later_outage_warns_again_after_redis_recovered(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    redis_sync: Any,
    caplog: pytest.LogCaptureFixture,
    plugin_records: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_redis, "RETRY_AFTER", 0.0)
    caplog.set_level(logging.INFO, logger="assemble.cache.redis")
    async with runner.run(cached_app(tmp_path, redis_prefix, redis_url)) as rt:
        for outage in (1, 2):
            # The pause (800 ms) must outlast both calls (four operations of at most 50 ms)
            # even if the loop stalls; the test then waits for its end, not a fixed time.
            monkeypatch.setattr(_redis, "OP_TIMEOUT", OP_TIMEOUT)  # the real bound: 50 ms
            redis_sync.execute_command("CLIENT", "PAUSE", 800, "ALL")
            await rt.run_task("lookup", {"id": outage})
            await rt.run_task("lookup", {"id": outage})
            await anyio.to_thread.run_sync(redis_sync.ping)  # answered when the pause ends
            assert len(warnings(plugin_records)) == outage
            monkeypatch.setattr(_redis, "OP_TIMEOUT", 5.0)  # Redis is healthy again
            await rt.run_task("lookup", {"id": 10 + outage})  # Redis answers again
    assert len(warnings(plugin_records)) == 2
    assert [r.getMessage() for r in plugin_records if r.levelno == logging.INFO] == [
        "cache.redis: Redis answers again; caching resumed"
    ] * 2


async def test_without_fail_open_an_outage_is_a_503_and_the_task_does_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis, "OP_TIMEOUT", OP_TIMEOUT)  # the real bound: 50 ms
    the_app = cached_app(tmp_path, "p:", extra=", fail_open: false", down=True)
    async with runner.run(the_app) as rt:
        for _ in range(2):  # the second one fails fast, without waiting for Redis
            with pytest.raises(RunnerError) as caught:
                await rt.run_task("lookup", {"id": 1})
            assert caught.value.http_status == 503
            assert caught.value.code == "cache.unavailable"
    assert runs() == []


def test_configs_are_checked(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: cr
        middleware:
          a: {use: cache.redis, config: {ttl: 0}}
          b: {use: cache.redis, config: {ttl: 5s, fail_open: maybe}}
          c: {use: cache.redis, config: {prefix: "x:"}}
        """,
    )
    assert [(code, line) for code, line, _, _ in found] == [
        ("ASM603", 4),
        ("ASM603", 5),
        ("ASM603", 6),
    ]
    assert "ttl must be at least 1ms" in found[0][3]


def test_the_redis_resource_is_a_dependency(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: cr
        middleware:
          a: {use: cache.redis, config: {ttl: 5s, redis: store}}
        """,
    )
    assert len(found) == 1
    assert "'store'" in found[0][3]
    assert "not registered" in found[0][3]
