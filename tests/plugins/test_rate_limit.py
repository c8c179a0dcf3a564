"""rate_limit: token buckets in memory (asyncio and trio) and in Redis (shared, atomic, TTLs)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import runner
from assemble_resilience._rate_limit import LUA_SHA, MemoryBuckets
from runner.errors import RateLimited, RunnerError

from ._apps import app, problems, write

pytestmark = pytest.mark.anyio
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py's client

MODULE = """
import redis.asyncio

async def hit(input):
    return "ok"

def by_user(input):
    return input["user"]

async def closed_port(config):
    client = redis.asyncio.Redis(host="127.0.0.1", port=1)  # nothing listens there
    yield client
    await client.aclose()
"""


def limited_app(tmp_path: Path, config: str, redis: str = "", more: str = "") -> runner.Resource:
    resources = f"resources:\n          redis: {redis}" if redis else ""
    return app(
        tmp_path,
        f"""
        assemble: 1
        id: rl
        {resources}
        middleware:
          limit: {{use: rate_limit, config: {config}}}
        tasks:
          a: {{run: rl_mod:hit, middleware: [limit{more}]}}
          b: {{run: rl_mod:hit, middleware: [limit]}}
        """,
        rl_mod=MODULE,
    )


async def outcome(rt: runner.Runtime, task: str, input: Any = None) -> float:
    """0.0 if the call passed, else the RateLimited error's retry_after."""
    error: RateLimited | None = None
    try:
        assert await rt.run_task(task, input) == "ok"
    except RateLimited as exc:
        error = exc
    if error is None:
        return 0.0
    assert (error.http_status, error.code, error.task) == (429, "runner.rate_limited", task)
    assert error.retry_after > 0
    return error.retry_after


# -- memory backend (asyncio and trio) -------------------------------------------------


async def test_each_key_has_its_own_bucket_and_the_wait_is_told(tmp_path: Path) -> None:
    the_app = limited_app(tmp_path, "{max_requests: 2, window: 60s, key: rl_mod:by_user}")
    async with runner.run(the_app) as rt:
        alice = [await outcome(rt, "a", {"user": "alice"}) for _ in range(3)]
        assert alice[:2] == [0.0, 0.0]
        assert 29.0 < alice[2] <= 30.0  # one token per 30 s
        assert [await outcome(rt, "a", {"user": "bob"}) for _ in range(3)][:2] == [0.0, 0.0]
        assert await outcome(rt, "b", {"user": "alice"}) == 0.0  # per task, too


async def test_tokens_refill_over_time(tmp_path: Path) -> None:
    the_app = limited_app(tmp_path, "{max_requests: 2, window: 1500ms}")
    async with runner.run(the_app) as rt:
        started = time.monotonic()
        assert [await outcome(rt, "a") for _ in range(2)] == [0.0, 0.0]
        wait = await outcome(rt, "a")
        took = time.monotonic() - started
        # One token per 750 ms, counted from the first call: the wait is what is left of
        # it. Checked against the time the calls took, so a stalled loop cannot fail it.
        assert 0.75 - took - 0.001 < wait <= 0.75
        await anyio.sleep(wait + 0.03)
        assert await outcome(rt, "a") == 0.0  # one token came back ...
        assert await outcome(rt, "a") > 0.0  # ... not the whole bucket (720 ms short)


async def test_without_a_key_every_input_shares_the_tasks_bucket(tmp_path: Path) -> None:
    the_app = limited_app(tmp_path, "{max_requests: 3, window: 60s}")
    async with runner.run(the_app) as rt:
        found = [await outcome(rt, "a", {"user": str(i)}) for i in range(4)]
        assert found[:3] == [0.0, 0.0, 0.0]
        assert found[3] > 0
        assert await outcome(rt, "b") == 0.0


async def test_two_limits_on_one_task_each_count(tmp_path: Path) -> None:
    the_app = limited_app(
        tmp_path,
        "{max_requests: 100, window: 60s}",
        more=", {use: rate_limit, config: {max_requests: 1, window: 60s}}",
    )
    async with runner.run(the_app) as rt:
        assert await outcome(rt, "a") == 0.0
        assert 59 < await outcome(rt, "a") <= 60


def test_memory_buckets_refill_and_stay_bounded() -> None:
    buckets = MemoryBuckets(capacity=2, window=10.0)
    assert [buckets.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 5.0]
    assert buckets.take("k", now=2.5) == 2.5  # half a token back: 2.5 s to go
    assert buckets.take("k", now=5.0) == 0.0
    for i in range(1000):
        buckets.take(i, now=6.0)
    assert len(buckets.buckets) == 1001
    buckets.take("late", now=16.0)  # every other bucket is full again by now: dropped
    assert list(buckets.buckets) == ["late"]
    capped = MemoryBuckets(capacity=1, window=60.0, max_keys=10)
    for i in range(100):
        capped.take(i, now=float(i) / 100)
    assert list(capped.buckets) == list(range(90, 100))


def test_configs_are_checked(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: rl
        middleware:
          a: {use: rate_limit, config: {max_requests: 0, window: 1s}}
          b: {use: rate_limit, config: {max_requests: 1, window: 0}}
          c: {use: rate_limit, config: {max_requests: 1, window: 1s, redis: r}}
          d: {use: rate_limit, config: {max_requests: 1, window: 1s, backend: disk}}
          e: {use: rate_limit, config: {max_requests: 1}}
        """,
    )
    assert [(code, line) for code, line, _, _ in found] == [
        ("ASM603", 4),
        ("ASM603", 5),
        ("ASM603", 6),
        ("ASM603", 7),
        ("ASM603", 8),
    ]
    assert "window must be at least 1ms" in found[1][3]
    assert "only used with backend: redis" in found[2][3]


def test_only_the_redis_backend_needs_a_redis_resource(tmp_path: Path) -> None:
    memory = "{use: rate_limit, config: {max_requests: 1, window: 1s}}"
    redis = "{use: rate_limit, config: {max_requests: 1, window: 1s, backend: redis}}"
    manifest = "assemble: 1\nid: rl\nmiddleware:\n  m: {}\n"
    assert problems(tmp_path, manifest.format(memory)) == []
    found = problems(tmp_path, manifest.format(redis))
    assert len(found) == 1
    assert "'redis'" in found[0][3]
    assert "not registered" in found[0][3]


# -- redis backend (asyncio only) --------------------------------------------------------


def redis_config(prefix: str, limit: str) -> str:
    return f'{{{limit}, backend: redis, prefix: "{prefix}"}}'


WORKER = """
import asyncio, json, sys, time
from pathlib import Path

import assembler, runner
from runner.errors import RateLimited

async def main(manifest, folder, n, hits):
    checked = assembler.check(manifest, assembler.load_plugins())
    assert checked.ok and checked.app is not None, [d.message for d in checked.diagnostics]
    async with runner.run(checked.app) as rt:
        redis = rt.resource("redis")  # open the pool's connections before the burst
        await asyncio.gather(*(redis.ping() for _ in range(100)))
        (folder / f"ready-{n}").touch()
        while not (folder / "go").exists():
            await asyncio.sleep(0.005)

        async def one():
            try:
                await rt.run_task("a")
                return "ok"
            except RateLimited as exc:
                return exc.retry_after
            except Exception as exc:
                return repr(exc)

        started = time.monotonic()
        found = await asyncio.gather(*(one() for _ in range(hits)))
        took = time.monotonic() - started
    waits = [f for f in found if isinstance(f, float)]
    print(json.dumps({
        "ok": found.count("ok"),
        "limited": len(waits),
        "min_wait": min(waits, default=None),
        "other": [f for f in found if isinstance(f, str) and f != "ok"],
        "took": took,
    }))

asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
"""


def test_four_processes_share_one_limit_exactly(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_sync: Any
) -> None:
    """4 processes x 200 concurrent calls on a limit of 100 per hour: 100 pass, in all.

    An hour refills a token every 36 s, far longer than the burst takes.
    """
    config = redis_config(redis_prefix, "max_requests: 100, window: 1h")
    manifest = write(
        tmp_path,
        f"""
        assemble: 1
        id: rl
        resources:
          redis: {{use: redis.client, config: {{url: "{redis_url}"}}}}
        tasks:
          a: {{run: rl_mod:hit, middleware: [{{use: rate_limit, config: {config}}}]}}
        """,
        rl_mod=MODULE,
    )
    (tmp_path / "worker.py").write_text(WORKER)
    workers = [
        subprocess.Popen(
            [sys.executable, "worker.py", str(manifest), str(tmp_path), str(n), "200"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < 4:
            assert time.monotonic() < deadline, "the workers did not start"
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
            time.sleep(0.01)
        (tmp_path / "go").touch()
        outputs = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    results = [json.loads(out) for out, _ in outputs]
    print("burst took", [round(r["took"], 2) for r in results], "s per process")
    assert [r["other"] for r in results] == [[], [], [], []]
    assert sum(r["ok"] for r in results) == 100
    assert sum(r["limited"] for r in results) == 700
    assert all(r["min_wait"] > 0 for r in results if r["limited"])
    keys = list(redis_sync.scan_iter(match=f"{redis_prefix}*"))
    assert len(keys) == 1  # one global bucket
    for key in keys:
        assert 3_500_000 < redis_sync.pttl(key) <= 3_600_000  # empty: an hour to refill


@asyncio_only
async def test_redis_buckets_per_key_expire_when_they_would_be_full(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_sync: Any
) -> None:
    config = redis_config(redis_prefix, "max_requests: 5, window: 10s, key: rl_mod:by_user")
    the_app = limited_app(
        tmp_path, config, f'{{use: redis.client, config: {{url: "{redis_url}"}}}}'
    )
    async with runner.run(the_app) as rt:
        started = time.monotonic()
        alice = [await outcome(rt, "a", {"user": "alice"}) for _ in range(6)]
        took = time.monotonic() - started
        assert alice[:5] == [0.0] * 5
        # one token per 2 s, less the time the calls took (a stalled loop included)
        assert 2.0 - took - 0.005 < alice[5] <= 2.0
        assert await outcome(rt, "a", {"user": "bob"}) == 0.0
        assert await outcome(rt, "b", {"user": "alice"}) == 0.0  # per task
    ttls = {
        k.rsplit(":", 1)[1] + "@" + k.split(":")[2]: redis_sync.pttl(k)
        for k in redis_sync.scan_iter(match=f"{redis_prefix}*")
    }
    assert set(ttls) == {"alice@a", "bob@a", "alice@b"}
    assert 9_000 < ttls["alice@a"] <= 10_000  # empty: 10 s to refill fully
    assert 1_000 < ttls["bob@a"] <= 2_000  # one token short: 2 s
    assert 1_000 < ttls["alice@b"] <= 2_000


@asyncio_only
async def test_redis_tokens_refill_by_the_servers_clock(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    config = redis_config(redis_prefix, "max_requests: 2, window: 1500ms")
    the_app = limited_app(
        tmp_path, config, f'{{use: redis.client, config: {{url: "{redis_url}"}}}}'
    )
    async with runner.run(the_app) as rt:
        started = time.monotonic()
        assert [await outcome(rt, "a") for _ in range(2)] == [0.0, 0.0]
        wait = await outcome(rt, "a")
        took = time.monotonic() - started
        # one token per 750 ms, less the time the calls took (a stalled loop included)
        assert 0.75 - took - 0.005 < wait <= 0.75
        await anyio.sleep(wait + 0.03)
        assert await outcome(rt, "a") == 0.0
        assert await outcome(rt, "a") > 0.0


@asyncio_only
async def test_the_script_is_loaded_again_when_redis_forgot_it(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_sync: Any
) -> None:
    config = redis_config(redis_prefix, "max_requests: 5, window: 10s")
    the_app = limited_app(
        tmp_path, config, f'{{use: redis.client, config: {{url: "{redis_url}"}}}}'
    )
    async with runner.run(the_app) as rt:
        assert await outcome(rt, "a") == 0.0
        redis_sync.script_flush()  # EVALSHA now answers NOSCRIPT: EVAL runs and caches it
        assert redis_sync.script_exists(LUA_SHA) == [False]
        assert await outcome(rt, "a") == 0.0
        assert redis_sync.script_exists(LUA_SHA) == [True]
    (key,) = redis_sync.scan_iter(match=f"{redis_prefix}*")
    tokens = float(redis_sync.hget(key, "tokens"))
    # 2 of 5 taken; half a token a second refills meanwhile: < 3.5 leaves a stalled loop
    # a second between the two calls
    assert 3.0 <= tokens < 3.5


@asyncio_only
async def test_with_redis_unreachable_calls_are_refused_with_503_and_one_warning(
    tmp_path: Path,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
    plugin_records: list[logging.LogRecord],
) -> None:
    caplog.set_level(logging.WARNING, logger="assemble.rate_limit")
    config = redis_config(redis_prefix, "max_requests: 5, window: 10s")
    the_app = limited_app(tmp_path, config, "{init: rl_mod:closed_port}")
    took = []
    async with runner.run(the_app) as rt:
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(RunnerError) as caught:
                await rt.run_task("a")
            took.append(time.monotonic() - started)
            assert caught.value.http_status == 503
            assert caught.value.code == "rate_limit.unavailable"
    assert took[0] < 3.5  # bounded (2 s), though the client retries for longer
    # refused at once while the outage lasts (trying Redis would take the 2 s again);
    # 1 s leaves room for a stalled loop
    assert max(took[1:]) < 1.0
    warned = [r for r in plugin_records if r.name == "assemble.rate_limit"]
    assert len(warned) == 1
    assert "Redis is unavailable" in warned[0].getMessage()
