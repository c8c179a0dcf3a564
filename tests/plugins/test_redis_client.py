"""redis.client: PING at init, closed at dispose, clear failures, asyncio only, optional lib."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio

import runner
from runner.errors import ResourceInitError, RunnerError

from ._apps import app, problems

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's asyncio client runs on asyncio only (trio: see the test below)."""
    return "asyncio"


MODULE = """
async def roundtrip(input, redis):
    await redis.set(input["key"], "v", px=60000)
    return {"value": (await redis.get(input["key"])).decode(), "ping": await redis.ping()}
"""


def client_app(tmp_path: Path, url: str) -> runner.Resource:
    return app(
        tmp_path,
        f"""
        assemble: 1
        id: rc
        resources:
          redis: {{use: redis.client, config: {{url: "{url}"}}}}
        tasks:
          roundtrip: {{run: rc_mod:roundtrip, dependencies: {{redis: redis}}}}
        """,
        rc_mod=MODULE,
    )


def client_names(redis_sync: Any) -> list[str]:
    return [c.get("name", "") for c in redis_sync.client_list()]


async def test_the_client_works_and_is_closed_at_dispose(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_sync: Any
) -> None:
    name = f"rc-{uuid.uuid4().hex[:8]}"
    the_app = client_app(tmp_path, f"{redis_url}?client_name={name}")
    async with runner.run(the_app) as rt:
        result = await rt.run_task("roundtrip", {"key": f"{redis_prefix}k"})
        assert result == {"value": "v", "ping": True}
        assert name in client_names(redis_sync)
        client = rt.resource("redis")
        assert isinstance(client, redis.asyncio.Redis)
    deadline = time.monotonic() + 2
    while name in client_names(redis_sync) and time.monotonic() < deadline:
        await anyio.sleep(0.02)
    assert name not in client_names(redis_sync)  # aclose() at dispose closed the pool


async def test_an_unreachable_redis_fails_init_naming_the_url_without_its_password(
    tmp_path: Path,
) -> None:
    the_app = client_app(tmp_path, "redis://alice:s3cret-pw@127.0.0.1:1/0")
    started = time.monotonic()
    with pytest.raises(ResourceInitError) as caught:
        async with runner.run(the_app):
            pass
    assert time.monotonic() - started < 10
    cause = caught.value.__cause__
    assert isinstance(cause, RunnerError)
    text = f"{caught.value} {cause}"
    assert "redis://alice:***@127.0.0.1:1/0" in text
    assert "cannot reach Redis" in text
    assert "s3cret-pw" not in text
    assert "start Redis" in cause.hint


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_on_trio_init_fails_clearly(tmp_path: Path) -> None:
    the_app = client_app(tmp_path, "redis://127.0.0.1:6379/0")
    with pytest.raises(ResourceInitError) as caught:
        async with runner.run(the_app):
            pass
    cause = caught.value.__cause__
    assert isinstance(cause, RunnerError)
    assert "redis.client needs the asyncio backend" in str(cause)


def test_a_url_that_is_not_redis_is_reported_at_its_place(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: rc
        resources:
          redis:
            use: redis.client
            config: {url: "http://u:secret@example.com/"}
        """,
    )
    assert [(code, line) for code, line, _, _ in found] == [("ASM603", 6)]
    message = found[0][3]
    assert "is not a Redis URL" in message
    assert "secret" not in message


def test_without_the_redis_library_validate_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` now fails
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: rc
        resources:
          redis: {use: redis.client}
        middleware:
          cached: {use: cache.redis, config: {ttl: 60s}}
          limited: {use: rate_limit, config: {max_requests: 5, window: 1s, backend: redis}}
        """,
    )
    assert {(code, line) for code, line, _, _ in found} == {
        ("ASM603", 4),
        ("ASM603", 6),
        ("ASM603", 7),
    }
    for _, _, _, message in found:
        assert "needs the `redis` library" in message


def test_the_plugins_load_without_importing_redis() -> None:
    """Light to import, and importable with the library missing (the extra not installed)."""
    code = """
import sys
import assemble_cache, assemble_redis, assemble_resilience
assert "redis" not in sys.modules, "imported redis at load time"
sys.modules["redis"] = None
import assembler
plugins = assembler.load_plugins(["cache", "redis", "resilience"])
assert not plugins.problems, plugins.problems
assert {"redis.client", "cache.redis", "rate_limit"} <= set(plugins.components)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- an outage, for real: a stalled or gone Redis behind a fault proxy ----------------

PIPELINE = """
async def roundtrip(input, redis):
    await redis.set(input["key"], "v", px=60000)
    return {"value": (await redis.get(input["key"])).decode(), "ping": await redis.ping()}

async def piped(input, redis):
    pipe = redis.pipeline()
    pipe.set(input["key"], "p", px=60000)
    pipe.get(input["key"])
    return [r.decode() if isinstance(r, bytes) else r for r in await pipe.execute()]
"""


def outage_app(tmp_path: Path, url: str) -> runner.Resource:
    return app(
        tmp_path,
        f"""
        assemble: 1
        id: rc
        resources:
          cache: {{use: redis.client, config: {{url: "{url}", timeout: 300ms}}}}
        tasks:
          roundtrip: {{run: rc_mod:roundtrip, dependencies: {{redis: cache}}}}
          piped: {{run: rc_mod:piped, dependencies: {{redis: cache}}}}
        """,
        rc_mod=PIPELINE,
    )


async def test_a_stalled_or_gone_redis_is_unavailable_within_the_bound(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    from runner.errors import ResourceUnavailable
    from tests.hostile.proxy import fault_proxy

    with fault_proxy("127.0.0.1", 6379) as proxy:
        url = redis_url.replace("127.0.0.1:6379", proxy.url_host)
        async with runner.run(outage_app(tmp_path, url)) as rt:
            key = {"key": f"{redis_prefix}k"}
            assert (await rt.run_task("roundtrip", key))["value"] == "v"
            assert await rt.run_task("piped", key) == [True, "p"]
            proxy.pause()  # TCP open, no answer
            for task in ("roundtrip", "piped"):
                start = time.monotonic()
                with pytest.raises(ResourceUnavailable) as stalled:
                    await rt.run_task(task, key)
                assert time.monotonic() - start < 0.3 * 2 + 0.5  # one retry at most
                assert stalled.value.message.startswith("'cache' is unavailable: Redis ")
            error = stalled.value
            assert (error.code, error.http_status) == ("cache.unavailable", 503)
            assert isinstance(error, OSError)  # cache.redis and rate_limit catch it as before
            proxy.resume()
            proxy.reset()
            proxy.refuse()  # gone: connections reset, new ones refused
            with pytest.raises(ResourceUnavailable) as gone:
                await rt.run_task("roundtrip", key)
            assert gone.value.message == "'cache' is unavailable: Redis cannot be reached"
            for leak in ("127.0.0.1", str(proxy.port), "ConnectionError", "Errno"):
                assert leak not in gone.value.message and leak not in str(stalled.value)
            assert str(proxy.port) in gone.value.detail or "Connection" in gone.value.detail
            proxy.accept()
            assert (await rt.run_task("roundtrip", key))["value"] == "v"
