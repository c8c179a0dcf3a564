"""cache.memory: hits, TTL, the LRU bound, single flight, errors, and one user per entry."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import anyio
import pytest

import runner
from assemble_auth import Principal, auth

from ._apps import app

pytestmark = pytest.mark.anyio

COUNTING = """
import anyio

RUNS = []

async def lookup(input):
    RUNS.append(input)
    await anyio.sleep(input.get("sleep", 0) if isinstance(input, dict) else 0)
    if isinstance(input, dict) and input.get("fail"):
        raise ConnectionError("backend down")
    return {"n": len(RUNS), "who": input}

def by_id(input):
    return str(input["id"])

async def whoami(input, auth):
    RUNS.append(input)
    return auth.use().subject
"""


def cached(tmp_path: Path, config: str = "{ttl: 60s}") -> runner.Resource:
    return app(
        tmp_path,
        f"""
        assemble: 1
        id: c
        tasks:
          lookup:
            run: cache_mod:lookup
            middleware: [{{use: cache.memory, config: {config}}}]
          whoami:
            run: cache_mod:whoami
            dependencies: {{auth: auth}}
            middleware: [{{use: cache.memory, config: {{ttl: 60s}}}}]
        """,
        cache_mod=COUNTING,
    )


def runs() -> list[Any]:
    import cache_mod  # type: ignore[import-not-found]

    return cache_mod.RUNS  # type: ignore[no-any-return]


async def test_a_repeated_input_is_served_from_the_cache(tmp_path: Path) -> None:
    a = cached(tmp_path)
    async with runner.run(a) as rt:
        first = await rt.run_task("lookup", {"id": 1, "tags": ["a", "b"]})
        again = await rt.run_task("lookup", {"tags": ["a", "b"], "id": 1})  # same, reordered
        other = await rt.run_task("lookup", {"id": 2})
    assert first == again == {"n": 1, "who": {"id": 1, "tags": ["a", "b"]}}
    assert other["n"] == 2 and len(runs()) == 2


async def test_entries_expire_after_their_ttl(tmp_path: Path) -> None:
    # 600 ms, not less: the second call must be a hit, and a stalled loop between the
    # first two calls must not outlast the TTL.
    a = cached(tmp_path, "{ttl: 600ms}")
    async with runner.run(a) as rt:
        await rt.run_task("lookup", {"id": 1})
        assert (await rt.run_task("lookup", {"id": 1}))["n"] == 1  # a hit
        await anyio.sleep(0.65)
        assert (await rt.run_task("lookup", {"id": 1}))["n"] == 2


async def test_the_least_recently_used_entry_goes_first(tmp_path: Path) -> None:
    a = cached(tmp_path, "{ttl: 60s, max_entries: 2}")
    async with runner.run(a) as rt:
        for i in (1, 2, 1, 3):  # 1 is used again, so 2 is the least recently used
            await rt.run_task("lookup", {"id": i})
        assert len(runs()) == 3
        await rt.run_task("lookup", {"id": 1})
        assert len(runs()) == 3  # still cached
        await rt.run_task("lookup", {"id": 2})
        assert len(runs()) == 4  # evicted, ran again


async def test_a_thousand_concurrent_cold_calls_run_the_task_once(tmp_path: Path) -> None:
    a = cached(tmp_path)
    answers: list[Any] = []
    async with runner.run(a) as rt:

        async def one() -> None:
            answers.append(await rt.run_task("lookup", {"id": 7, "sleep": 0.05}))

        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(one)
    assert len(runs()) == 1
    assert len(answers) == 1000 and all(x == answers[0] for x in answers)


async def test_errors_are_shared_with_waiting_callers_but_never_cached(tmp_path: Path) -> None:
    a = cached(tmp_path)
    failures: list[BaseException] = []
    async with runner.run(a) as rt:

        async def one() -> None:
            try:
                await rt.run_task("lookup", {"fail": True, "sleep": 0.05})
            except ConnectionError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
        assert len(failures) == 5 and len(runs()) == 1  # one run, its error for all five
        with pytest.raises(ConnectionError):
            await rt.run_task("lookup", {"fail": True})
        assert len(runs()) == 2  # the failure was not cached


async def test_a_cancelled_leader_hands_the_miss_to_a_waiting_caller(tmp_path: Path) -> None:
    a = cached(tmp_path)
    got: list[Any] = []
    async with runner.run(a) as rt, anyio.create_task_group() as tg:

        async def leader() -> None:
            with anyio.move_on_after(0.02):
                await rt.run_task("lookup", {"id": 3, "sleep": 0.1})

        async def follower() -> None:
            await anyio.sleep(0.005)
            got.append(await rt.run_task("lookup", {"id": 3, "sleep": 0.1}))

        tg.start_soon(leader)
        tg.start_soon(follower)
    assert got == [{"n": 2, "who": {"id": 3, "sleep": 0.1}}]  # it ran the task itself


async def test_one_users_result_is_never_served_to_another(tmp_path: Path) -> None:
    a = cached(tmp_path)
    async with runner.run(a) as rt:
        with auth.provide(Principal("alice")):
            assert await rt.run_task("whoami", {}) == "alice"
        with auth.provide(Principal("bob")):
            assert await rt.run_task("whoami", {}) == "bob"
        with auth.provide(Principal("alice")):
            assert await rt.run_task("whoami", {}) == "alice"
    assert len(runs()) == 2  # alice's second call was a hit


async def test_a_key_function_decides_what_is_the_same_call(tmp_path: Path) -> None:
    a = cached(tmp_path, "{ttl: 60s, key: 'cache_mod:by_id'}")
    async with runner.run(a) as rt:
        await rt.run_task("lookup", {"id": 1, "noise": 1})
        hit = await rt.run_task("lookup", {"id": 1, "noise": 2})
    assert hit["n"] == 1 and len(runs()) == 1


async def test_an_input_that_is_not_json_is_not_cached(tmp_path: Path) -> None:
    a = cached(tmp_path)
    async with runner.run(a) as rt:
        await rt.run_task("lookup", {"when": object()})
        await rt.run_task("lookup", {"when": object()})
    assert len(runs()) == 2


async def test_each_caller_gets_its_own_copy_of_a_cached_result(tmp_path: Path) -> None:
    a = cached(tmp_path)
    async with runner.run(a) as rt:
        first = await rt.run_task("lookup", {"id": 5})
        first["who"]["id"] = "mutated by the first caller"
        again = await rt.run_task("lookup", {"id": 5})
    assert again == {"n": 1, "who": {"id": 5}}


async def test_callers_sharing_a_failed_miss_each_get_their_own_error(tmp_path: Path) -> None:
    a = cached(tmp_path)
    failures: list[BaseException] = []
    async with runner.run(a) as rt:

        async def one() -> None:
            try:
                await rt.run_task("lookup", {"fail": True, "sleep": 0.05})
            except ConnectionError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(one)
    assert len(runs()) == 1 and len(failures) == 200
    assert len({id(f) for f in failures}) == 200
    depth = max(len(traceback.extract_tb(f.__traceback__)) for f in failures)
    assert depth < 40, f"a traceback of {depth} frames: callers' frames piled up"


async def test_a_call_with_credentials_but_no_principal_is_never_cached(
    tmp_path: Path,
) -> None:
    a = cached(tmp_path)
    request = runner.Request("r1", {"authorization": "Bearer whatever"})
    async with runner.run(a) as rt:
        with runner.current_request.provide(request):
            await rt.run_task("lookup", {"id": 9})
            await rt.run_task("lookup", {"id": 9})
    assert len(runs()) == 2
