"""retry, timeout, circuit_breaker, concurrency and fallback, used from manifests as users do."""

from __future__ import annotations

import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import runner
from assemble_resilience._retry import delays
from runner.errors import CircuitOpen, Forbidden, TaskTimeoutError

from ._apps import app, check, problems

pytestmark = pytest.mark.anyio

FLAKY = """
import json, pathlib

ATTEMPTS = []

async def flaky(input, attempt):
    ATTEMPTS.append(attempt.use())
    if len(ATTEMPTS) <= input["fail"]:
        raise {error}("boom")
    return len(ATTEMPTS)
"""


# -- timeout -------------------------------------------------------------------------


async def test_a_timed_out_task_is_cancelled_and_never_performs_its_later_side_effects(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "written"
    a = app(
        tmp_path,
        """
        assemble: 1
        id: t
        tasks:
          slow:
            run: slow_mod:slow
            middleware: [{use: timeout, config: {after: 100ms}}]
        """,
        slow_mod=f"""
        import anyio, pathlib

        LOG = []

        async def slow(input):
            try:
                await anyio.sleep(30)
            except BaseException as exc:
                LOG.append(type(exc).__name__)
                raise
            pathlib.Path({str(marker)!r}).write_text("late")
        """,
    )
    import slow_mod  # type: ignore[import-not-found]

    # The task sleeps 30 s and records the cancel it gets, instead of ending a little
    # after the deadline: a stalled loop cannot then make the margins too tight.
    async with runner.run(a) as rt:
        start = time.monotonic()
        with pytest.raises(TaskTimeoutError) as err:
            await rt.run_task("slow", None)
        elapsed = time.monotonic() - start
    assert elapsed < 10, "the caller is released at the deadline, not when the task ends"
    assert slow_mod.LOG in (["CancelledError"], ["Cancelled"])  # cancelled at its await
    assert not marker.exists()
    e = err.value
    assert isinstance(e, TimeoutError) and e.http_status == 504 and e.code == "runner.timeout"
    assert "'slow' timed out after 0.1s" in str(e)


async def test_a_sync_task_runs_in_a_worker_thread_and_the_caller_is_released(
    tmp_path: Path,
) -> None:
    a = app(
        tmp_path,
        """
        assemble: 1
        id: t
        tasks:
          blocking:
            run: blocking_mod:blocking
            middleware: [{use: timeout, config: {after: 0.1}}]
        """,
        blocking_mod="""
        import threading

        RELEASE = threading.Event()
        DONE = threading.Event()

        def blocking(input):
            RELEASE.wait(30)
            DONE.set()
        """,
    )
    import blocking_mod  # type: ignore[import-not-found]

    # The thread blocks until released (not for a fixed time a stalled loop could
    # outlast), so "the caller did not wait for it" holds with any margin.
    try:
        async with runner.run(a) as rt:
            start = time.monotonic()
            with pytest.raises(TaskTimeoutError):
                await rt.run_task("blocking", None)
            assert time.monotonic() - start < 10  # not held until the thread is released
            assert not blocking_mod.DONE.is_set()
            blocking_mod.RELEASE.set()
            await anyio.to_thread.run_sync(blocking_mod.DONE.wait, 5)  # the thread runs out
            assert blocking_mod.DONE.is_set()
    finally:
        blocking_mod.RELEASE.set()


async def test_a_task_within_its_deadline_answers_unchanged(tmp_path: Path) -> None:
    a = app(
        tmp_path,
        """
        assemble: 1
        id: t
        tasks:
          quick: {run: quick_mod:quick, middleware: [{use: timeout, config: {after: 5s}}]}
        """,
        quick_mod="async def quick(input):\n    return {'echo': input}\n",
    )
    async with runner.run(a) as rt:
        assert await rt.run_task("quick", 7) == {"echo": 7}


def test_timeout_configs_are_checked_at_their_place(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: t
        middleware:
          zero: {use: timeout, config: {after: 0s}}
          words: {use: timeout, config: {after: soon}}
          none: {use: timeout}
        """,
    )
    assert [(c, line) for c, line, _, _ in found] == [
        ("ASM603", 4),
        ("ASM603", 5),
        ("ASM603", 6),
    ]
    assert "a timeout must be above 0" in found[0][3]
    assert "'soon'" in found[1][3]
    assert "after" in found[2][3]


# -- retry ---------------------------------------------------------------------------


def retry_app(tmp_path: Path, config: str, error: str = "ConnectionError") -> runner.Resource:
    return app(
        tmp_path,
        f"""
        assemble: 1
        id: r
        tasks:
          flaky:
            run: flaky_mod:flaky
            dependencies: {{attempt: retry.attempt}}
            middleware: [{{use: retry, config: {config}}}]
        """,
        flaky_mod=FLAKY.format(error=error),
    )


async def test_retry_runs_again_until_success_and_the_attempt_is_observable(
    tmp_path: Path,
) -> None:
    a = retry_app(tmp_path, "{attempts: 3, delay: 1ms}")
    import flaky_mod  # type: ignore[import-not-found]

    async with runner.run(a) as rt:
        assert await rt.run_task("flaky", {"fail": 2}) == 3
    assert flaky_mod.ATTEMPTS == [1, 2, 3]


async def test_retry_gives_up_after_its_attempts_with_the_last_error(tmp_path: Path) -> None:
    a = retry_app(tmp_path, "{attempts: 2, delay: 1ms}")
    import flaky_mod

    async with runner.run(a) as rt:
        with pytest.raises(ConnectionError, match="boom"):
            await rt.run_task("flaky", {"fail": 5})
    assert flaky_mod.ATTEMPTS == [1, 2]


async def test_retry_leaves_client_errors_alone_by_default(tmp_path: Path) -> None:
    a = retry_app(tmp_path, "{delay: 1ms}", error="__import__('runner').errors.Forbidden")
    import flaky_mod

    async with runner.run(a) as rt:
        with pytest.raises(Forbidden):
            await rt.run_task("flaky", {"fail": 1})
    assert flaky_mod.ATTEMPTS == [1]


async def test_retry_on_limits_what_is_retried(tmp_path: Path) -> None:
    (tmp_path / "errs.py").write_text("class Transient(Exception):\n    pass\n")
    a = retry_app(tmp_path, "{delay: 1ms, retry_on: [TimeoutError, errs:Transient]}", "ValueError")
    import flaky_mod

    async with runner.run(a) as rt:
        with pytest.raises(ValueError, match="boom"):
            await rt.run_task("flaky", {"fail": 1})
    assert flaky_mod.ATTEMPTS == [1]


async def test_retry_on_names_user_exception_classes(tmp_path: Path) -> None:
    (tmp_path / "errs2.py").write_text("class Transient(Exception):\n    pass\n")
    a = retry_app(
        tmp_path, "{delay: 1ms, retry_on: [errs2:Transient]}", "__import__('errs2').Transient"
    )

    async with runner.run(a) as rt:
        assert await rt.run_task("flaky", {"fail": 1}) == 2


async def test_a_cancel_during_the_backoff_returns_promptly(tmp_path: Path) -> None:
    a = retry_app(tmp_path, "{attempts: 3, delay: 30s, max_delay: 30s, jitter: false}")
    async with runner.run(a) as rt:
        start = time.monotonic()
        with anyio.move_on_after(0.2):
            await rt.run_task("flaky", {"fail": 2})
        assert time.monotonic() - start < 2  # not the 30 s backoff


def test_backoff_grows_is_capped_and_jitter_stays_below_the_ceiling() -> None:
    exp = delays("exponential", 0.1, 1.0, jitter=False)
    assert [exp(n) for n in (1, 2, 3, 4, 5, 500)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    lin = delays("linear", 0.1, 0.25, jitter=False)
    assert [round(lin(n), 3) for n in (1, 2, 3)] == [0.1, 0.2, 0.25]
    assert delays("constant", 0.3, 1.0, jitter=False)(9) == 0.3
    full = delays("exponential", 0.1, 1.0, jitter=True)
    samples = [full(4) for _ in range(2000)]
    assert all(0 <= s <= 0.8 for s in samples)
    assert min(samples) < 0.1 and max(samples) > 0.7  # spread over the whole range


def test_retry_configs_are_checked_at_their_place(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: r
        middleware:
          a: {use: retry, config: {delay: 5s, max_delay: 1s}}
          b: {use: retry, config: {retry_on: [nowhere:Nope]}}
          c: {use: retry, config: {backoff: fibonacci}}
          d: {use: retry, config: {retry_on: [int, "exc_mod:not_a_class", "exc_mod:Boom"]}}
        """,
        exc_mod="class Boom(Exception):\n    pass\n\ndef not_a_class():\n    pass\n",
    )
    assert [(c, line, col) for c, line, col, _ in found] == [
        ("ASM603", 4, 50),
        ("ASM402", 5, 39),
        ("ASM603", 6, 37),
        ("ASM603", 7, 39),
        ("ASM603", 7, 44),
    ]
    assert "max_delay (1s) is below delay (5s)" in found[0][3]
    assert found[3][3] == "config of 'retry' (plugin resilience): 'int' is not an exception class"
    assert "'exc_mod:not_a_class' is not an exception class" in found[4][3]


# -- circuit_breaker -----------------------------------------------------------------

BREAKER = """
import runner

RUNS = []
FAIL = [True]

async def call(input):
    RUNS.append(input)
    if input == "client":
        raise runner.errors.Forbidden()
    if FAIL[0]:
        raise ConnectionError("down")
    return "up"
"""


async def test_the_circuit_opens_fails_fast_then_lets_one_trial_through(tmp_path: Path) -> None:
    a = app(
        tmp_path,
        """
        assemble: 1
        id: c
        tasks:
          call:
            run: breaker_mod:call
            middleware: [{use: circuit_breaker, config: {failure_threshold: 2, reset_after: 600ms}}]
        """,
        breaker_mod=BREAKER,
    )
    # reset_after is 600 ms (not less) because the circuit must still be open at the
    # call right after it opened: a stalled loop between the two must not outlast it.
    import breaker_mod  # type: ignore[import-not-found]

    async with runner.run(a) as rt:
        for _ in range(3):  # client errors do not count against the circuit
            with pytest.raises(Forbidden):
                await rt.run_task("call", "client")
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await rt.run_task("call", 1)
        with pytest.raises(CircuitOpen) as err:
            await rt.run_task("call", 2)
        assert err.value.http_status == 503 and 0 < err.value.retry_after <= 0.6
        assert breaker_mod.RUNS.count(2) == 0  # failed fast: the task did not run
        await anyio.sleep(0.65)
        with pytest.raises(ConnectionError):  # the trial fails: open again at once
            await rt.run_task("call", 3)
        with pytest.raises(CircuitOpen):
            await rt.run_task("call", 4)
        await anyio.sleep(0.65)
        breaker_mod.FAIL[0] = False
        assert await rt.run_task("call", 5) == "up"  # the trial succeeds: closed
        assert await rt.run_task("call", 6) == "up"
    assert [r for r in breaker_mod.RUNS if r != "client"] == [1, 1, 3, 5, 6]


# -- concurrency ---------------------------------------------------------------------


async def test_concurrency_bounds_how_many_runs_are_in_progress(tmp_path: Path) -> None:
    a = app(
        tmp_path,
        """
        assemble: 1
        id: c
        tasks:
          work: {run: conc_mod:work, middleware: [{use: concurrency, config: {limit: 2}}]}
        """,
        conc_mod="""
        import anyio

        NOW = [0]
        PEAK = [0]

        async def work(input):
            NOW[0] += 1
            PEAK[0] = max(PEAK[0], NOW[0])
            await anyio.sleep(0.02)
            NOW[0] -= 1
            return input
        """,
    )
    import conc_mod  # type: ignore[import-not-found]

    results: list[Any] = []
    async with runner.run(a) as rt:

        async def one(i: int) -> None:
            results.append(await rt.run_task("work", i))

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(one, i)
    assert sorted(results) == list(range(8))
    assert conc_mod.PEAK[0] == 2


# -- fallback ------------------------------------------------------------------------


async def test_fallback_answers_with_a_value_or_another_task(tmp_path: Path) -> None:
    a = app(
        tmp_path,
        """
        assemble: 1
        id: f
        tasks:
          primary:
            run: fb_mod:primary
            middleware: [{use: fallback, config: {value: {source: default}}}]
          via_task:
            run: fb_mod:primary
            middleware: [{use: fallback, config: {task: secondary}}]
          secondary: {run: fb_mod:secondary}
        """,
        fb_mod="""
        import runner

        async def primary(input):
            if input == "client":
                raise runner.errors.Forbidden()
            raise ConnectionError("down")

        async def secondary(input):
            return {"source": "secondary", "input": input}
        """,
    )
    async with runner.run(a) as rt:
        first = await rt.run_task("primary", 1)
        assert first == {"source": "default"}
        first["source"] = "mutated"
        assert await rt.run_task("primary", 1) == {"source": "default"}
        assert await rt.run_task("via_task", 9) == {"source": "secondary", "input": 9}
        with pytest.raises(Forbidden):  # not hidden behind the fallback
            await rt.run_task("primary", "client")


def test_fallback_needs_exactly_one_of_value_and_task(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: f
        middleware:
          both: {use: fallback, config: {value: 1, task: x}}
          neither: {use: fallback, config: {}}
        """,
    )
    assert [(c, line) for c, line, _, _ in found] == [("ASM603", 4), ("ASM603", 5)]
    missing = problems(
        tmp_path,
        """
        assemble: 1
        id: f
        middleware:
          missing: {use: fallback, config: {task: nowhere}}
        """,
    )
    assert [(c, line) for c, line, _, _ in missing] == [("ASM502", 4)]
    assert "'nowhere'" in missing[0][3]


NESTED = """
import anyio

LOG = []

async def sleepy(input):
    try:
        await anyio.sleep(input["sleep"])
    except BaseException as exc:
        LOG.append(type(exc).__name__)
        raise
    LOG.append("finished")
    return input["sleep"]

async def stubborn(input):
    try:
        await anyio.sleep(1)
    except BaseException:
        LOG.append("swallowed")
    return "too late"
"""


def nested_app(tmp_path: Path) -> runner.Resource:
    return app(
        tmp_path,
        """
        assemble: 1
        id: n
        middleware:
          outer_short: {use: timeout, config: {after: 50ms}}
          inner_long: {use: timeout, config: {after: 5s}}
          outer_long: {use: timeout, config: {after: 5s}}
          inner_short: {use: timeout, config: {after: 50ms}}
        tasks:
          short_outside: {run: nested_mod:sleepy, middleware: [outer_short, inner_long]}
          short_inside: {run: nested_mod:sleepy, middleware: [outer_long, inner_short]}
          long_inside: {run: nested_mod:sleepy, middleware: [outer_long, inner_long]}
          stubborn: {run: nested_mod:stubborn, middleware: [inner_short]}
        """,
        nested_mod=NESTED,
    )


async def test_nested_timeouts_each_report_their_own_deadline(tmp_path: Path) -> None:
    a = nested_app(tmp_path)
    async with runner.run(a) as rt:
        with pytest.raises(TaskTimeoutError) as outer:
            await rt.run_task("short_outside", {"sleep": 1})
        assert outer.value.after == 0.05
        with pytest.raises(TaskTimeoutError) as inner:
            await rt.run_task("short_inside", {"sleep": 1})
        assert inner.value.after == 0.05
        # within the deadlines: unchanged. Checked with 5 s deadlines, not 50 ms ones: a
        # stalled loop (on trio, a deadline that passes during the call) would time out
        # even a call that does not sleep.
        assert await rt.run_task("long_inside", {"sleep": 0}) == 0


async def test_a_task_that_swallows_the_cancel_still_times_out(tmp_path: Path) -> None:
    a = nested_app(tmp_path)
    import nested_mod  # type: ignore[import-not-found]

    async with runner.run(a) as rt:
        with pytest.raises(TaskTimeoutError):
            await rt.run_task("stubborn", None)
        await anyio.lowlevel.checkpoint()  # no stray cancel is left pending for the caller
        assert await rt.run_task("long_inside", {"sleep": 0}) == 0  # 5 s: see above
    assert nested_mod.LOG == ["swallowed", "finished"]


async def test_an_outer_cancel_is_not_mistaken_for_a_timeout(tmp_path: Path) -> None:
    a = nested_app(tmp_path)
    async with runner.run(a) as rt:
        with anyio.move_on_after(0.05) as scope:  # the caller gives up first
            await rt.run_task("short_inside", {"sleep": 0.2})  # its timeout is 50 ms too
        assert scope.cancelled_caught
        with anyio.move_on_after(0.02) as scope:
            await rt.run_task("short_outside", {"sleep": 1})
        assert scope.cancelled_caught  # the cancel went to the caller, not a TimeoutError


async def test_many_calls_under_one_timeout_expire_each_at_its_own_deadline(
    tmp_path: Path,
) -> None:
    # One timer serves every call of a `timeout` use (asyncio): the short calls must not
    # be cut by a long one's deadline, nor the long ones outlive theirs. The deadline is
    # wide (1 s against sleeps of at most 2 ms) so that a stall of the loop (a full GC
    # late in a CI run) cannot make a short call late; the long calls sleep 30 s, so a
    # missed deadline shows as the elapsed time, not as a flaky margin.
    a = app(
        tmp_path,
        """
        assemble: 1
        id: many
        tasks:
          bounded: {run: many_mod:sleepy, middleware: [{use: timeout, config: {after: 1s}}]}
        """,
        many_mod=NESTED,
    )
    outcomes: dict[float, str] = {}
    async with runner.run(a) as rt:

        async def one(sleep: float) -> None:
            try:
                await rt.run_task("bounded", {"sleep": sleep})
                outcomes[sleep] = "ok"
            except TaskTimeoutError:
                outcomes[sleep] = "timeout"

        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, 0.0001 * i if i % 2 else 30 + i)
        elapsed = time.monotonic() - start
    assert outcomes == {s: "ok" if s < 1 else "timeout" for s in outcomes}
    assert len(outcomes) == 20
    assert 0.9 < elapsed < 10, "the long calls end at their deadline, not at their sleep"


async def test_a_task_that_turns_the_cancel_into_an_error_leaves_no_cancel_behind(
    tmp_path: Path,
) -> None:
    a = app(
        tmp_path,
        """
        assemble: 1
        id: w
        tasks:
          wraps:
            run: wrap_mod:wraps
            middleware:
              - {use: retry, config: {attempts: 2, delay: 1ms}}
              - {use: timeout, config: {after: 20ms}}
        """,
        wrap_mod="""
        import anyio

        CALLS = []

        async def wraps(input):
            CALLS.append(1)
            if len(CALLS) == 1:
                try:
                    await anyio.sleep(1)
                except BaseException as exc:
                    raise ConnectionError("wrapped") from exc
            await anyio.sleep(1)
        """,
    )
    async with runner.run(a) as rt:
        with pytest.raises(TaskTimeoutError):  # both attempts time out, as timeouts
            await rt.run_task("wraps", None)
        await anyio.sleep(0.01)  # and the caller itself is not cancelled afterwards


async def test_calls_from_before_the_circuit_opened_do_not_decide_its_state(
    tmp_path: Path,
) -> None:
    a = app(
        tmp_path,
        """
        assemble: 1
        id: g
        tasks:
          call:
            run: gen_mod:call
            middleware: [{use: circuit_breaker, config: {failure_threshold: 1, reset_after: 100ms}}]
        """,
        gen_mod="""
        RUNNING = []
        GATES = {}

        async def call(input):
            RUNNING.append(input["name"])
            gate = GATES.get(input["name"])
            if gate is not None:
                await gate.wait()
            RUNNING.remove(input["name"])
            if input.get("fail"):
                raise ConnectionError("down")
            return input["name"]
        """,
    )
    import gen_mod  # type: ignore[import-not-found]

    # The slow calls end when the test releases them, not after fixed sleeps: a stalled
    # loop could otherwise end them before the circuit opened or while the trial runs.
    gates = {name: anyio.Event() for name in ("slow_ok", "slow_bad", "trial")}
    gen_mod.GATES.update(gates)

    async def running(*names: str) -> None:
        with anyio.fail_after(5):
            while sorted(gen_mod.RUNNING) != sorted(names):
                await anyio.sleep(0.005)

    outcomes: dict[str, str] = {}

    async def settled(name: str) -> None:
        with anyio.fail_after(5):
            while name not in outcomes:
                await anyio.sleep(0.005)

    async with runner.run(a) as rt:

        async def one(**input: Any) -> None:
            try:
                outcomes[input["name"]] = await rt.run_task("call", input)
            except Exception as exc:
                outcomes[input["name"]] = type(exc).__name__

        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(one, name="slow_ok"))  # admitted while closed
            tg.start_soon(partial(one, name="slow_bad", fail=True))
            await running("slow_ok", "slow_bad")
            await one(name="opener", fail=True)  # opens the circuit
            await anyio.sleep(0.12)  # half-open (reset_after 100 ms): one trial, slow
            tg.start_soon(partial(one, name="trial"))
            await running("slow_ok", "slow_bad", "trial")
            await one(name="during_trial")
            assert outcomes["during_trial"] == "CircuitOpen"
            gates["slow_bad"].set()  # slow_bad fails, then slow_ok succeeds: both stale
            await settled("slow_bad")
            gates["slow_ok"].set()
            await settled("slow_ok")
            assert gen_mod.RUNNING == ["trial"]
            await one(name="still_open")
            assert outcomes["still_open"] == "CircuitOpen"  # only the trial decides
            gates["trial"].set()
        await one(name="after_trial")
    assert outcomes["trial"] == "trial" and outcomes["after_trial"] == "after_trial"
    assert outcomes["slow_ok"] == "slow_ok" and outcomes["slow_bad"] == "ConnectionError"


async def test_timed_out_sync_tasks_cannot_pile_up_threads(tmp_path: Path) -> None:
    a = app(
        tmp_path,
        """
        assemble: 1
        id: h
        tasks:
          hang: {run: hang_mod:hang, middleware: [{use: timeout, config: {after: 20ms}}]}
        """,
        hang_mod="""
        import threading

        RELEASE = threading.Event()
        LOCK = threading.Lock()
        STARTED = [0]

        def hang(input):
            with LOCK:
                STARTED[0] += 1
            RELEASE.wait(10)
        """,
    )
    import hang_mod  # type: ignore[import-not-found]

    from runner._threads import SYNC_THREADS

    try:
        async with runner.run(a) as rt:
            for _ in range(SYNC_THREADS + 20):
                with pytest.raises(TaskTimeoutError):
                    await rt.run_task("hang", None)
            # every caller was released, but only SYNC_THREADS threads ever started:
            # the rest waited for a slot the hung threads still hold, and timed out
            assert hang_mod.STARTED[0] == SYNC_THREADS
            assert runner.abandoned_threads() == SYNC_THREADS
            hang_mod.RELEASE.set()
            # the hung threads end and give their slots back; waited for, not slept on:
            # a busy machine may take a while to run 40 threads
            with anyio.fail_after(10):
                while runner.abandoned_threads():
                    await anyio.sleep(0.01)
            hang_mod.RELEASE.clear()
            with pytest.raises(TaskTimeoutError):
                await rt.run_task("hang", None)
            # the new thread may not have run yet when its caller timed out at 20 ms
            with anyio.fail_after(10):
                while hang_mod.STARTED[0] < SYNC_THREADS + 1:
                    await anyio.sleep(0.01)
            assert hang_mod.STARTED[0] == SYNC_THREADS + 1
    finally:
        hang_mod.RELEASE.set()


def test_assemble_call_does_not_wait_for_a_hung_sync_task(tmp_path: Path) -> None:
    (tmp_path / "hung_cli.py").write_text("import time\n\ndef hang(input):\n    time.sleep(30)\n")
    (tmp_path / "app.yaml").write_text(
        "assemble: 1\nid: h\ntasks:\n"
        "  hang: {run: hung_cli:hang, middleware: [{use: timeout, config: {after: 100ms}}]}\n"
    )
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "assembler", "call", str(tmp_path / "app.yaml"), "hang"],
        capture_output=True,
        text=True,
        timeout=25,
    )
    assert time.monotonic() - start < 20  # not the 30 s the thread sleeps
    assert done.returncode == 1 and done.stdout == ""
    assert "error[runner.timeout]" in done.stderr
    assert "not waiting for 1 worker thread(s)" in done.stderr


def test_a_missing_fallback_task_inline_is_placed_at_its_entry(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: f
        tasks:
          t:
            run: fb2_mod:t
            middleware: [{use: fallback, config: {task: nowhere}}]
        """,
        fb2_mod="def t(input):\n    return input\n",
    )
    assert [(c, line, col) for c, line, col, _ in found] == [("ASM502", 6, 18)]
    checked = check(tmp_path / "app.yaml")
    assert "declare 'nowhere' in the manifest" in checked.diagnostics[0].hint
