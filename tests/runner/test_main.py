"""The blocking entry point: signals, graceful disposal, exit codes (real subprocesses)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import runner
from runner import Resource

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, time, anyio, runner
from pathlib import Path

out = Path(sys.argv[1])
fail = sys.argv[2] == "fail"

async def init(config):
    (out / "ready").write_text("ready")
    return "db"

async def dispose(value):
    await anyio.sleep(0.05)
    (out / "disposed").write_text(value)
    if fail:
        raise OSError("could not flush")

app = runner.Resource("app", register=[runner.Resource("db", init=init, dispose=dispose)])
sys.exit(runner.main(app, backend=sys.argv[3]))
"""


def start(tmp_path: Path, mode: str, backend: str) -> subprocess.Popen[str]:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), mode, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 20
    while not (tmp_path / "ready").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the app never became ready"
        time.sleep(0.02)
    return proc


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_disposes_gracefully_and_exits_0(tmp_path: Path, backend: str, sig: int) -> None:
    proc = start(tmp_path, "ok", backend)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert (tmp_path / "disposed").read_text() == "db"
    assert out == "" and err == ""


def test_a_failing_disposer_exits_1_with_a_message_and_no_traceback(tmp_path: Path) -> None:
    proc = start(tmp_path, "fail", "asyncio")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "error[runner.dispose]" in err
    assert "error[OSError]: could not flush" in err
    assert "note: while disposing resource 'db'" in err
    assert "Traceback" not in err


@pytest.mark.anyio
async def test_serve_returns_1_and_reports_when_startup_fails() -> None:
    def broken(config: Any) -> None:
        raise ConnectionRefusedError("db is down")

    err = io.StringIO()
    code = await runner.serve(Resource("app", register=[Resource("db", init=broken)]), stderr=err)
    assert code == 1
    assert "error[runner.resource_init]: resource 'db' failed to initialise" in err.getvalue()
    assert "hint:" in err.getvalue()


@pytest.mark.anyio
async def test_serve_stops_on_a_signal_after_ready(anyio_backend: str) -> None:
    log: list[str] = []

    async def ready(rt: runner.Runtime) -> None:
        log.append(rt.state)
        os.kill(os.getpid(), signal.SIGTERM)

    app = Resource(
        "app", register=[Resource("db", init=lambda c: 1, dispose=lambda v: log.append("disposed"))]
    )
    with anyio.fail_after(10):
        assert await runner.serve(app, on_ready=ready) == 0
    assert log == ["running", "disposed"]


@pytest.mark.anyio
async def test_a_signal_during_startup_rolls_back_and_exits_0() -> None:
    log: list[str] = []

    async def slow(config: Any, f: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        await anyio.sleep(10)

    app = Resource(
        "app",
        register=[
            Resource("first", init=lambda c: 1, dispose=lambda v: log.append("first disposed")),
            Resource("slow", init=slow, dependencies={"f": "first"}),
        ],
    )
    with anyio.fail_after(5):
        assert await runner.serve(app, on_ready=lambda rt: log.append("ready")) == 0
    assert log == ["first disposed"]


@pytest.mark.anyio
async def test_a_second_signal_abandons_the_drain() -> None:
    async def stuck(input: Any) -> None:
        await anyio.sleep(30)

    async def ready(rt: runner.Runtime) -> None:
        async def later() -> None:
            await rt.run_task("stuck")

        async def second_signal() -> None:
            # The drain starts once `ready` returns; a second signal before that finds
            # no drain to abandon. Wait for the drain, not a fixed time a stalled loop
            # could outlast.
            while rt.state != "draining":
                await anyio.sleep(0.005)
            os.kill(os.getpid(), signal.SIGTERM)

        rt.store  # noqa: B018  # the runtime is usable here
        _tasks.start_soon(later)
        while rt.in_flight == 0:  # `stuck` is accepted work before the first signal
            await anyio.sleep(0.005)
        os.kill(os.getpid(), signal.SIGTERM)
        _tasks.start_soon(second_signal)

    app = Resource("app", register=[runner.Task("stuck", run=stuck)])
    err = io.StringIO()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as _tasks:
            code = await runner.serve(app, on_ready=ready, drain_timeout=None, stderr=err)
            _tasks.cancel_scope.cancel()
    assert code == 1
    assert "runner.drain_timeout" in err.getvalue()


def test_main_runs_the_app_until_a_signal(tmp_path: Path) -> None:
    async def ready_then_stop(config: Any) -> Any:
        os.kill(os.getpid(), signal.SIGINT)
        return None

    app = Resource("app", register=[Resource("r", init=ready_then_stop)])
    assert runner.main(app) == 0


@pytest.mark.anyio
async def test_concurrent_startup_failures_are_all_reported() -> None:
    def broken(config: Any) -> None:
        raise ConnectionRefusedError("down")

    err = io.StringIO()
    app = Resource("app", register=[Resource("a", init=broken), Resource("b", init=broken)])
    assert await runner.serve(app, stderr=err) == 1
    text = err.getvalue()
    assert "error[runner.startup]: 2 resources failed to initialise" in text
    assert "resource 'a' failed" in text and "resource 'b' failed" in text


@pytest.mark.anyio
async def test_a_sync_on_ready_callback_works() -> None:
    log: list[str] = []

    def ready(rt: runner.Runtime) -> None:
        log.append("ready")
        os.kill(os.getpid(), signal.SIGTERM)

    with anyio.fail_after(5):
        assert await runner.serve(Resource("app"), on_ready=ready) == 0
    assert log == ["ready"]
