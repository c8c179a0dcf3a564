"""``invalidate_on``: events that make a cache's entries stale, in one process (cache.memory)
and across processes (cache.redis, a generation number kept in Redis)."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

import runner

from ._apps import app, problems

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _wide_op_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A healthy Redis gets 5 s per operation here, not 50 ms: a stalled loop (a full GC
    late in a CI run) must not read as an outage that turns an expected hit into a miss."""
    from assemble_cache import _redis

    monkeypatch.setattr(_redis, "OP_TIMEOUT", 5.0)


MODULE = """
import anyio
import redis.asyncio

DB = {}
RUNS = []
GATES = []         # lookups of id 1 take the first gate (an anyio.Event) and wait on it
SEEN_BY_HOOK = []

async def lookup(input):
    RUNS.append(input["id"])
    value = DB.get(input["id"])
    if GATES and input["id"] == 1:
        await GATES.pop(0).wait()
    return value

async def rename(input, renamed):
    DB[input["id"]] = input["name"]
    await renamed({"id": input["id"]})

async def audit(emission, lookup):
    SEEN_BY_HOOK.append(await lookup({"id": emission.data["id"]}))

async def closed_port(config):
    client = redis.asyncio.Redis(host="127.0.0.1", port=1)  # nothing listens there
    yield client
    await client.aclose()
"""


def memory_app(tmp_path: Path, module: str) -> runner.Resource:
    return app(
        tmp_path,
        f"""
        assemble: 1
        id: inv
        events:
          renamed: {{}}
          other: {{}}
        middleware:
          names: {{use: cache.memory, config: {{ttl: 60s, invalidate_on: [renamed]}}}}
        hooks:
          audit: {{on: renamed, run: {module}:audit, dependencies: {{lookup: lookup}}}}
        tasks:
          lookup: {{run: {module}:lookup, middleware: [names]}}
          inline:
            run: {module}:lookup
            middleware: [{{use: cache.memory, config: {{ttl: 60s, invalidate_on: [other]}}}}]
          rename: {{run: {module}:rename, dependencies: {{renamed: renamed}}}}
        """,
        None,
        **{module: MODULE},
    )


def module(name: str) -> Any:
    import sys

    return sys.modules[name]


async def test_an_event_empties_the_cache_before_the_events_other_hooks_run(
    tmp_path: Path,
) -> None:
    async with runner.run(memory_app(tmp_path, "inv_a")) as rt:
        m = module("inv_a")
        m.DB[1] = "ada"
        assert await rt.run_task("lookup", {"id": 1}) == "ada"
        assert await rt.run_task("lookup", {"id": 1}) == "ada"
        assert m.RUNS == [1]  # the second call was a hit
        await rt.run_task("rename", {"id": 1, "name": "grace"})
        assert m.SEEN_BY_HOOK == ["grace"]  # the audit hook already missed
        assert await rt.run_task("lookup", {"id": 1}) == "grace"
        assert m.RUNS == [1, 1]  # served from the entry the hook's call stored


async def test_an_event_empties_only_the_caches_that_name_it(tmp_path: Path) -> None:
    async with runner.run(memory_app(tmp_path, "inv_b")) as rt:
        m = module("inv_b")
        m.DB[1] = "ada"
        await rt.run_task("lookup", {"id": 1})
        await rt.run_task("inline", {"id": 1})
        await rt.emit("other", None)
        await rt.run_task("lookup", {"id": 1})  # still cached: `names` ignores `other`
        await rt.run_task("inline", {"id": 1})  # emptied
        assert m.RUNS == [1, 1, 1]


async def test_a_call_in_flight_during_the_event_does_not_store_its_older_result(
    tmp_path: Path,
) -> None:
    async with runner.run(memory_app(tmp_path, "inv_c")) as rt:
        m = module("inv_c")
        m.DB[1] = "ada"
        older, newer = anyio.Event(), anyio.Event()
        m.GATES.extend([older, newer])
        answers: list[Any] = []

        async def read() -> None:
            answers.append(await rt.run_task("lookup", {"id": 1}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            while m.RUNS != [1]:  # it has read "ada" and waits at its gate
                await anyio.sleep(0.001)
            m.DB[1] = "grace"
            await rt.emit("renamed", {"id": 99})  # 99: the audit hook reads another id
            tg.start_soon(read)  # after the event: must not join the older call
            while len(m.RUNS) < 3:
                await anyio.sleep(0.001)
            newer.set()  # the newer call answers and stores "grace" first...
            while answers != ["grace"]:
                await anyio.sleep(0.001)
            older.set()  # ...then the older one answers "ada", and must not store it
        assert answers == ["grace", "ada"]
        assert await rt.run_task("lookup", {"id": 1}) == "grace"
        assert m.RUNS == [1, 99, 1]  # served from the newer call's entry


def test_an_undeclared_event_is_reported_at_its_place(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: inv
        events: {renamed: {}}
        middleware:
          names: {use: cache.memory, config: {ttl: 1s, invalidate_on: [renamed, renamd]}}
        tasks:
          t:
            run: inv_mod:lookup
            middleware: [{use: cache.memory, config: {ttl: 1s, invalidate_on: [gone]}}]
        """,
        inv_mod=MODULE,
    )
    assert [(code, line, col) for code, line, col, _ in found] == [
        ("cache/unknown-event", 5, 73),  # at `renamd`
        ("cache/unknown-event", 9, 72),  # at `gone`
    ]
    assert "invalidate_on names event 'renamd', which is not declared" in found[0][3]


# -- cache.redis: across processes ---------------------------------------------------


def redis_app(tmp_path: Path, name: str, prefix: str, redis: str) -> runner.Resource:
    folder = tmp_path / name
    folder.mkdir()
    return app(
        folder,
        f"""
        assemble: 1
        id: {name}
        events:
          renamed: {{}}
        resources:
          {redis}
        middleware:
          names:
            use: cache.redis
            config: {{ttl: 60s, prefix: "{prefix}", invalidate_on: [renamed]}}
        tasks:
          lookup: {{run: {name}_mod:lookup, middleware: [names]}}
          rename: {{run: {name}_mod:rename, dependencies: {{renamed: renamed}}}}
        """,
        None,
        **{f"{name}_mod": MODULE},
    )


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py runs on asyncio only
async def test_an_event_in_one_process_is_seen_by_every_process_sharing_the_cache(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_sync: Any
) -> None:
    client = f'redis: {{use: redis.client, config: {{url: "{redis_url}"}}}}'
    a = redis_app(tmp_path, f"a{uuid.uuid4().hex[:8]}", redis_prefix, client)
    b = redis_app(tmp_path, f"b{uuid.uuid4().hex[:8]}", redis_prefix, client)
    async with runner.run(a) as ra, runner.run(b) as rb:
        ma, mb = module(f"{a.id}_mod"), module(f"{b.id}_mod")
        ma.DB[1] = mb.DB[1] = "ada"  # one database, seen by both
        assert await ra.run_task("lookup", {"id": 1}) == "ada"
        assert await rb.run_task("lookup", {"id": 1}) == "ada"
        assert (ma.RUNS, mb.RUNS) == ([1], [])  # b was served a's entry
        generation = redis_sync.get(f"{redis_prefix}@generation")
        assert generation is not None  # started, at random, by the first read
        mb.DB[1] = "grace"
        await rb.run_task("rename", {"id": 1, "name": "grace"})  # b changes it
        ma.DB[1] = "grace"
        assert await ra.run_task("lookup", {"id": 1}) == "grace"  # a misses at once
        assert await rb.run_task("lookup", {"id": 1}) == "grace"  # and shares the new one
        assert (ma.RUNS, mb.RUNS) == ([1, 1], [])
    assert redis_sync.get(f"{redis_prefix}@generation") not in (None, generation)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_result_read_before_the_event_is_never_served_after_it(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    client = f'redis: {{use: redis.client, config: {{url: "{redis_url}"}}}}'
    a = redis_app(tmp_path, f"c{uuid.uuid4().hex[:8]}", redis_prefix, client)
    async with runner.run(a) as rt:
        m = module(f"{a.id}_mod")
        m.DB[1] = "ada"
        gate = anyio.Event()
        m.GATES.append(gate)
        async with anyio.create_task_group() as tg:
            tg.start_soon(rt.run_task, "lookup", {"id": 1})
            while m.RUNS != [1]:
                await anyio.sleep(0.001)
            await rt.run_task("rename", {"id": 1, "name": "grace"})
            gate.set()  # the older call now writes "ada", under the older generation
        assert await rt.run_task("lookup", {"id": 1}) == "grace"
        assert await rt.run_task("lookup", {"id": 1}) == "grace"
        assert m.RUNS == [1, 1]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_lost_generation_is_started_anew_and_older_entries_never_match(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_sync: Any
) -> None:
    client = f'redis: {{use: redis.client, config: {{url: "{redis_url}"}}}}'
    a = redis_app(tmp_path, f"f{uuid.uuid4().hex[:8]}", redis_prefix, client)
    async with runner.run(a) as rt:
        m = module(f"{a.id}_mod")
        m.DB[1] = "ada"
        assert await rt.run_task("lookup", {"id": 1}) == "ada"
        m.DB[1] = "grace"  # changed where no event says so...
        redis_sync.delete(f"{redis_prefix}@generation")  # ...and the generation is lost
        assert await rt.run_task("lookup", {"id": 1}) == "grace"  # a new one: a miss
        assert await rt.run_task("lookup", {"id": 1}) == "grace"  # cached under it
        assert m.RUNS == [1, 1]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_invalidation_redis_missed_is_logged_and_the_cache_bypassed_until_sent(
    tmp_path: Path,
    redis_prefix: str,
    plugin_records: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from assemble_cache import _redis

    monkeypatch.setattr(_redis, "OP_TIMEOUT", 0.05)  # Redis is down: the real bound
    name = f"d{uuid.uuid4().hex[:8]}"
    a = redis_app(tmp_path, name, redis_prefix, f"redis: {{init: {name}_mod:closed_port}}")
    async with runner.run(a) as rt:
        m = module(f"{a.id}_mod")
        m.DB[1] = "ada"
        await rt.run_task("rename", {"id": 1, "name": "grace"})  # the emitter succeeds
        assert await rt.run_task("lookup", {"id": 1}) == "grace"
        assert await rt.run_task("lookup", {"id": 1}) == "grace"
    ours = [r for r in plugin_records if r.name == "assemble.cache.redis"]
    errors = [r for r in ours if r.levelno == logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    assert f"'renamed' could not invalidate the entries under {redis_prefix!r}" in text
    assert "runs its calls uncached" in text
    assert m.RUNS == [1, 1]  # uncached while the invalidation is pending
    warned = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert warned[0].startswith("cache.redis of 'lookup': Redis is unavailable")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_pending_invalidation_is_sent_by_the_next_call_then_caching_resumes(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    redis_sync: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from assemble_cache import _redis

    client = f'redis: {{use: redis.client, config: {{url: "{redis_url}"}}}}'
    a = redis_app(tmp_path, f"e{uuid.uuid4().hex[:8]}", redis_prefix, client)
    async with runner.run(a) as rt:
        m = module(f"{a.id}_mod")
        m.DB[1] = "ada"
        assert await rt.run_task("lookup", {"id": 1}) == "ada"
        first = redis_sync.get(f"{redis_prefix}@generation")
        monkeypatch.setattr(_redis, "INVALIDATE_TIMEOUT", 0.1)
        redis_sync.execute_command("CLIENT", "PAUSE", 500, "WRITE")  # reads still answer
        await rt.run_task("rename", {"id": 1, "name": "grace"})  # its SET times out
        # The SET may or may not be applied once the pause ends: the process cannot
        # know, so it sends a new one again (at least once: an extra one only costs misses).
        await anyio.sleep(0.6)
        before = redis_sync.get(f"{redis_prefix}@generation")
        assert await rt.run_task("lookup", {"id": 1}) == "grace"  # sent first, then a miss
        assert redis_sync.get(f"{redis_prefix}@generation") not in (None, first, before)
        assert await rt.run_task("lookup", {"id": 1}) == "grace"  # cached again
        assert m.RUNS == [1, 1]
