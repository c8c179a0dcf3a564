"""``tunnel.nats``: remote tasks and events across processes, on the machine's real NATS.

In-process pairs (a worker app and a caller app in one event loop, each test on its own
subject prefix) pin the behaviour; the scale-out tests run 3 workers as real
``assemble run worker.yaml`` processes and call them from this process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import runner
from assemble_tunnel import RemoteError, TunnelUnavailable
from runner.errors import TaskTimeoutError, ValidationError

from ._apps import app, problems

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # nats-py runs on asyncio only


WORKER_CODE = """
import os
import anyio
import runner

HEARD = []

async def work(input):
    if isinstance(input, dict) and "mark" in input and os.environ.get("MARKS"):
        # tells the test this worker process runs a call of that kind (by a file)
        open(os.path.join(os.environ["MARKS"], f"{os.getpid()}-{input['mark']}"), "w").close()
    await anyio.sleep(input.get("seconds", 0) if isinstance(input, dict) else 0)
    return {"pid": os.getpid(), "echo": input,
            "request": runner.current_request.use().id}

def boom(input):
    raise KeyError("secret-detail")

def on_ping(emission):
    HEARD.append(emission.data)
"""

WORKER = """
assemble: 1
id: worker
resources:
  bus:
    use: tunnel.nats
    config:
      url: "${env.NATS_URL:-nats://127.0.0.1:4222}"
      subject_prefix: "${env.PREFIX}"
      serve: [jobs.work, jobs.work_again, jobs.boom, jobs.strict]
      events: [ping]
events:
  ping: {}
hooks:
  heard: {on: ping, run: worker_code:on_ping}
tasks:
  jobs.work: {run: worker_code:work}
  jobs.work_again: {run: worker_code:work}
  jobs.boom: {run: worker_code:boom}
  jobs.strict:
    run: worker_code:work
    input_schema: {type: object, required: [n], properties: {n: {type: integer}}}
"""

CALLER_CODE = """
HEARD = []

def on_ping(emission):
    HEARD.append(emission.data)
"""

CALLER = """
assemble: 1
id: caller
resources:
  bus:
    use: tunnel.nats
    config:
      url: "${env.NATS_URL:-nats://127.0.0.1:4222}"
      subject_prefix: "${env.PREFIX}"
      call: ["jobs.*", nobody.home]
      events: [ping]
      timeout: "${env.TIMEOUT:-5s}"
      connect_timeout: "${env.CONNECT_TIMEOUT:-10s}"
      retries: 3
events:
  ping: {}
hooks:
  heard: {on: ping, run: caller_code:on_ping}
tasks:
  jobs.work: {remote: true, idempotent: true}
  jobs.work_again: {remote: true}
  jobs.boom: {remote: true}
  jobs.strict: {remote: true}
  nobody.home: {remote: true}
"""


@pytest.fixture
def prefix() -> str:
    return f"test{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def node(
    tmp_path: Path,
    name: str,
    manifest: str,
    env: dict[str, str],
    drain_timeout: float = 30,
    **code: str,
) -> AsyncIterator[runner.Runtime]:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    async with runner.run(app(folder, manifest, env, **code), drain_timeout=drain_timeout) as rt:
        yield rt


async def test_a_remote_call_round_trip_with_typed_errors(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    env = {"PREFIX": prefix, "NATS_URL": nats_url}
    async with (
        node(tmp_path, "w", WORKER, env, worker_code=WORKER_CODE),
        node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE) as caller,
    ):
        with runner.current_request.provide(runner.Request("req-nats-1")):
            got = await caller.run_task("jobs.work", {"n": 1})
        assert got["pid"] == os.getpid() and got["echo"] == {"n": 1}
        assert got["request"] == "req-nats-1"  # the request id crossed the bus
        with pytest.raises(ValidationError) as invalid:
            await caller.run_task("jobs.strict", {"n": "one"})
        assert invalid.value.field == "n"
        with pytest.raises(RemoteError) as untyped:
            await caller.run_task("jobs.boom")
        assert (untyped.value.code, untyped.value.message) == ("INTERNAL_ERROR", "Internal Error")
        assert "secret-detail" not in str(untyped.value)


async def test_nobody_serving_fails_fast_not_after_the_timeout(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    env = {"PREFIX": prefix, "NATS_URL": nats_url, "TIMEOUT": "20s"}
    async with node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE) as caller:
        start = time.monotonic()
        with pytest.raises(TunnelUnavailable, match="no process serves it"):
            await caller.run_task("nobody.home")
        assert time.monotonic() - start < 5  # NATS says "no responders" at once


async def test_an_unreachable_nats_fails_init_and_names_no_password(
    tmp_path: Path, prefix: str
) -> None:
    # Port 1 refuses at once; the password holds `@`, `/` and `,`, none of which may leak.
    url = "nats://ops:s3cr@t/p,w@127.0.0.1:1, nats://ops:s3cr@t/p,w@127.0.0.1:1"
    env = {"PREFIX": prefix, "NATS_URL": url, "CONNECT_TIMEOUT": "1s"}
    start = time.monotonic()
    with pytest.raises(runner.errors.ResourceInitError) as err:
        async with node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE):
            pass
    text = str(err.value)
    assert "NatsTunnelError: tunnel.nats cannot reach NATS at " in text
    assert "nats://ops:***@127.0.0.1:1,nats://ops:***@127.0.0.1:1 (tried for 1s)" in text
    assert "ConnectionRefusedError" in text and "hint: start nats-server" in text
    assert "s3cr" not in text and "p,w" not in text
    assert time.monotonic() - start < 20  # bounded: nats-py alone would retry for ever


def test_urls_are_split_into_servers_and_credentials_and_shown_without_secrets() -> None:
    from assemble_tunnel._nats import credentials, safe_url, servers

    url = "nats://u:p,a@ss@h1:4222 ,nats://u:p,a@ss@h2:4222,"
    assert servers(url) == ["nats://u:p,a@ss@h1:4222", "nats://u:p,a@ss@h2:4222"]
    assert credentials("nats://u%40x:p%2Fq@h:1") == ("nats://h:1", "u@x", "p/q")
    assert credentials("tls://s3cr3t-token@h:1") == ("tls://h:1", "s3cr3t-token", None)
    assert credentials("nats://h:1") == ("nats://h:1", None, None)
    assert safe_url(url) == "nats://u:***@h1:4222,nats://u:***@h2:4222"
    assert safe_url("nats://s3cr3t-token@h:1") == "nats://***@h:1"  # a token is a secret


@pytest.fixture
def guarded_nats(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A nats-server of the test's own that wants a user and a password full of URL
    syntax: ``(host:port, password)``."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        if os.environ.get("CI"):
            pytest.fail("nats-server is not installed (CI is set: it must run there)")
        pytest.skip("nats-server is not installed")
    password = "p@ss/w#rd?,x"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "--user", "ops", "--pass", password],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nats-server did not start in 20 s"
                time.sleep(0.05)
        yield f"127.0.0.1:{port}", password
    finally:
        proc.terminate()
        proc.wait(10)


async def test_a_password_with_url_syntax_is_sent_as_written(
    tmp_path: Path, prefix: str, guarded_nats: tuple[str, str]
) -> None:
    address, password = guarded_nats
    env = {"PREFIX": prefix, "NATS_URL": f"nats://ops:{password}@{address}"}
    async with (
        node(tmp_path, "w", WORKER, env, worker_code=WORKER_CODE),
        node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE) as caller,
    ):
        assert (await caller.run_task("jobs.work", {"seconds": 0}))["echo"] == {"seconds": 0}
    wrong = {**env, "NATS_URL": f"nats://ops:not-it@{address}", "CONNECT_TIMEOUT": "1s"}
    with pytest.raises(runner.errors.ResourceInitError) as err:
        async with node(tmp_path, "x", CALLER, wrong, caller_code=CALLER_CODE):
            pass
    assert "Authorization" in str(err.value) and "not-it" not in str(err.value)
    assert "NATS refused the credentials" in str(err.value)


async def test_servers_naming_different_credentials_are_refused(
    tmp_path: Path, prefix: str
) -> None:
    url = "nats://a:pw-1st@127.0.0.1:1,nats://a:pw-2nd@127.0.0.1:2"
    env = {"PREFIX": prefix, "NATS_URL": url}
    with pytest.raises(runner.errors.ResourceInitError) as err:
        async with node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE):
            pass
    assert "name different credentials" in str(err.value)
    assert "pw-1st" not in str(err.value) and "pw-2nd" not in str(err.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_cluster_url_lists_servers_and_any_that_answers_will_do(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    env = {"PREFIX": prefix, "NATS_URL": f"nats://127.0.0.1:1, {nats_url}"}
    async with (
        node(tmp_path, "w", WORKER, env, worker_code=WORKER_CODE),
        node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE) as caller,
    ):
        assert await caller.run_task("jobs.work", {"seconds": 0}) is not None


async def test_a_call_past_the_timeout_is_a_timeout_error(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    env = {"PREFIX": prefix, "NATS_URL": nats_url, "TIMEOUT": "300ms"}
    async with (
        node(tmp_path, "w", WORKER, env, worker_code=WORKER_CODE),
        node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE) as caller,
    ):
        with pytest.raises(TaskTimeoutError):
            await caller.run_task("jobs.work_again", {"seconds": 3})  # not idempotent


async def test_events_reach_every_other_node_once(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    env = {"PREFIX": prefix, "NATS_URL": nats_url}
    async with (
        node(tmp_path, "w", WORKER, env, worker_code=WORKER_CODE),
        node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE) as caller,
    ):
        import caller_code  # type: ignore[import-not-found]
        import worker_code  # type: ignore[import-not-found]

        await caller.emit("ping", {"n": 1})
        with anyio.fail_after(5):
            while not worker_code.HEARD:
                await anyio.sleep(0.01)
        await anyio.sleep(0.2)  # anything doubled or echoed would have arrived by now
        assert worker_code.HEARD == [{"n": 1}]
        assert caller_code.HEARD == [{"n": 1}]  # its own hooks, once: no echo


def test_validate_knows_nats_routes(tmp_path: Path) -> None:
    manifest = """
    assemble: 1
    id: v
    resources:
      bus: {use: tunnel.nats, config: {call: [a, ghost], serve: [b]}}
    tasks:
      a: {remote: true}
      b: {run: m:f}
      c: {remote: true}
    """
    (tmp_path / "m.py").write_text("def f(input):\n    return 1\n")
    found = sorted((code, message) for code, _, _, message in problems(tmp_path, manifest))
    assert found == [
        (
            "tunnel/not-routed",
            "task 'c' is `remote: true` but no tunnel routes it: every call would fail",
        ),
        ("tunnel/unknown-id", "tunnel.nats 'bus' lists task 'ghost', which is not declared"),
    ]


# -- real worker processes ------------------------------------------------------------


@pytest.fixture
def workers(tmp_path: Path, nats_url: str, prefix: str) -> Iterator[list[subprocess.Popen[str]]]:
    """3 `assemble run worker.yaml` processes serving the jobs on this test's prefix."""
    folder = tmp_path / "worker"
    folder.mkdir()
    (folder / "worker.yaml").write_text(WORKER)
    (folder / "worker_code.py").write_text(WORKER_CODE)
    (tmp_path / "marks").mkdir()
    env = {**os.environ, "PREFIX": prefix, "NATS_URL": nats_url, "MARKS": str(tmp_path / "marks")}
    env.pop("ASSEMBLE_PLUGINS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "assembler", "run", str(folder / "worker.yaml")],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for proc in procs:
            assert proc.stderr is not None
            line = proc.stderr.readline()  # "assemble: worker is running ..." once subscribed
            assert "is running" in line, line + proc.stderr.read()
        yield procs
    finally:
        kill_all(procs)


def marked(tmp_path: Path, worker: subprocess.Popen[str], kind: str) -> bool:
    """Whether ``worker`` (of the `workers` fixture) started a call with ``mark: kind``."""
    return (tmp_path / "marks" / f"{worker.pid}-{kind}").exists()


async def test_600_concurrent_calls_are_shared_by_3_workers(
    tmp_path: Path, nats_url: str, prefix: str, workers: list[subprocess.Popen[str]]
) -> None:
    env = {"PREFIX": prefix, "NATS_URL": nats_url, "TIMEOUT": "20s"}
    pids: list[int] = []
    async with node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE) as caller:

        async def one(i: int) -> None:
            got = await caller.run_task("jobs.work", {"i": i, "seconds": 0.01})
            assert got["echo"]["i"] == i
            pids.append(got["pid"])

        async with anyio.create_task_group() as tg:
            for i in range(600):
                tg.start_soon(one, i)
    counts = Counter(pids)
    assert sum(counts.values()) == 600
    assert set(counts) == {p.pid for p in workers}
    assert min(counts.values()) >= 120, counts  # each worker served at least 20 %


async def test_a_killed_worker_fails_or_retries_its_calls_and_the_rest_carry_on(
    tmp_path: Path, nats_url: str, prefix: str, workers: list[subprocess.Popen[str]]
) -> None:
    env = {"PREFIX": prefix, "NATS_URL": nats_url, "TIMEOUT": "2s"}
    victim = workers[0]
    outcomes: dict[str, list[Any]] = {"idempotent": [], "once": []}
    async with node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE) as caller:

        async def call(kind: str, task: str) -> None:
            try:
                got = await caller.run_task(task, {"seconds": 1, "mark": kind})
                outcomes[kind].append(got["pid"])
            except Exception as exc:
                outcomes[kind].append(exc)

        # NATS gives each call to a random worker: with 30 calls of each kind, the
        # victim gets no "once" call in one run of 190000 (with 15: one of 440).
        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(call, "idempotent", "jobs.work")
                tg.start_soon(call, "once", "jobs.work_again")
            # killed while it runs a "once" call (they last 1 s): waited for, not slept
            # on, as a loaded machine may take a while to hand the calls out
            with anyio.fail_after(10):
                while not marked(tmp_path, victim, "once"):
                    await anyio.sleep(0.01)
            victim.send_signal(signal.SIGKILL)
        # idempotent calls that were on the victim ran again elsewhere: all answered
        assert all(isinstance(o, int) and o != victim.pid for o in outcomes["idempotent"]), (
            outcomes["idempotent"]
        )
        lost = [o for o in outcomes["once"] if not isinstance(o, int)]
        assert lost, "some calls were on the killed worker"
        assert all(isinstance(o, TaskTimeoutError) for o in lost), lost  # typed
        for _ in range(20):  # later calls all succeed on the others
            got = await caller.run_task("jobs.work_again", {"seconds": 0})
            assert got["pid"] in {workers[1].pid, workers[2].pid}


async def test_sigterm_on_a_worker_lets_its_calls_in_flight_finish(
    tmp_path: Path, nats_url: str, prefix: str, workers: list[subprocess.Popen[str]]
) -> None:
    env = {"PREFIX": prefix, "NATS_URL": nats_url, "TIMEOUT": "10s"}
    stopping = workers[0]
    results: list[Any] = []
    async with node(tmp_path, "c", CALLER, env, caller_code=CALLER_CODE) as caller:

        async def call() -> None:
            try:
                results.append(
                    await caller.run_task("jobs.work_again", {"seconds": 1, "mark": "x"})
                )
            except Exception as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(call)
            with anyio.fail_after(10):  # it runs calls (1 s each) when it is told to stop
                while not marked(tmp_path, stopping, "x"):
                    await anyio.sleep(0.01)
            stopping.send_signal(signal.SIGTERM)
    assert all(isinstance(r, dict) for r in results), results  # every call answered
    assert stopping.pid in {r["pid"] for r in results}  # including those it was running
    assert stopping.wait(10) == 0


# -- durable events (JetStream) -------------------------------------------------------

DURABLE_CODE = """
import os
import anyio

async def record(emission):
    n = emission.data["n"]
    slow_in = emission.data.get("slow_in")
    if slow_in and slow_in == os.environ.get("WORKER_NAME"):
        await anyio.sleep(30)  # killed before it acknowledges
    await anyio.sleep(emission.data.get("sleep", 0))
    with open(os.environ["HANDLED"], "a") as f:
        f.write(f"{os.environ.get('WORKER_NAME', 'caller')} {n}\\n")
"""

DURABLE = """
assemble: 1
id: durable_worker
resources:
  bus:
    use: tunnel.nats
    config:
      url: "${env.NATS_URL:-nats://127.0.0.1:4222}"
      subject_prefix: "${env.PREFIX}"
      durable_events: [order.placed]
      ack_wait: 1s
events:
  order.placed: {payload_schema: {type: object, required: [n]}}
hooks:
  record: {on: order.placed, run: durable_code:record}
"""


def start_durable_workers(
    tmp_path: Path, env: dict[str, str], names: list[str]
) -> list[subprocess.Popen[str]]:
    folder = tmp_path / "durable"
    folder.mkdir(exist_ok=True)
    (folder / "worker.yaml").write_text(DURABLE)
    (folder / "durable_code.py").write_text(DURABLE_CODE)
    base = {**os.environ, **env}
    base.pop("ASSEMBLE_PLUGINS", None)
    procs = []
    for name in names:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assembler", "run", str(folder / "worker.yaml")],
            env={**base, "WORKER_NAME": name},
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "is running" in line, line + proc.stderr.read()
        procs.append(proc)
    return procs


def handled(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(w, int(n)) for w, n in (line.split() for line in path.read_text().splitlines())]


async def wait_for(path: Path, count: int, seconds: float) -> list[tuple[str, int]]:
    with anyio.fail_after(seconds):
        while len({n for _, n in handled(path)}) < count:
            await anyio.sleep(0.05)
    return handled(path)


async def publish_raw(nats_url: str, prefix: str, payload: dict[str, Any]) -> None:
    """Emit through JetStream from outside any app (a producer with no consumer)."""
    import nats

    from assemble_tunnel import dumps

    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(f"{prefix}.durable.order.placed", dumps(payload).encode())
    finally:
        await nc.close()


def kill_all(procs: list[subprocess.Popen[str]]) -> None:
    """SIGKILL the worker processes still running, reap them, close their pipes."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


async def purge(nats_url: str, prefix: str) -> None:
    import nats

    nc = await nats.connect(nats_url)
    try:
        from assemble_tunnel._nats import stream_name

        await nc.jetstream().delete_stream(stream_name(prefix))
    except Exception:
        pass
    finally:
        await nc.close()


async def test_1000_durable_events_across_2_consumers_all_handled(
    tmp_path: Path, nats_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "handled.txt"
    monkeypatch.setenv("HANDLED", str(path))  # the emitter consumes too (same manifest)
    env = {"PREFIX": prefix, "NATS_URL": nats_url, "HANDLED": str(path)}
    procs = start_durable_workers(tmp_path, env, ["a", "b"])
    try:
        async with node(tmp_path, "emitter", DURABLE, env, durable_code=DURABLE_CODE) as rt:
            for n in range(1000):
                await rt.emit("order.placed", {"n": n})  # stored in JetStream when it returns
            seen = await wait_for(path, 1000, 60)
        assert {n for _, n in seen} == set(range(1000))  # none lost
        by = Counter(w for w, _ in seen)
        assert by["a"] > 0 and by["b"] > 0, by  # shared by the consumers
    finally:
        kill_all(procs)
        await purge(nats_url, prefix)


async def test_a_durable_event_whose_consumer_died_is_delivered_again(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    path = tmp_path / "handled.txt"
    env = {"PREFIX": prefix, "NATS_URL": nats_url, "HANDLED": str(path)}
    (slow,) = start_durable_workers(tmp_path, env, ["slow"])
    survivor: list[subprocess.Popen[str]] = []
    try:
        await publish_raw(nats_url, prefix, {"n": 1, "slow_in": "slow"})  # stored
        await anyio.sleep(1.0)  # "slow" fetched it and sleeps in its hook
        slow.send_signal(signal.SIGKILL)
        slow.wait(10)
        assert handled(path) == []  # never acknowledged
        survivor = start_durable_workers(tmp_path, env, ["survivor"])
        seen = await wait_for(path, 1, 20)  # ack_wait (1 s) passed: delivered again
        assert seen == [("survivor", 1)]
    finally:
        kill_all([slow, *survivor])
        await purge(nats_url, prefix)


CHARGE_CODE = """
import os
import anyio
from runner.errors import ShuttingDown

async def charge(input, audit):
    with open(os.environ["CHARGES"], "a") as f:
        f.write("charged\\n")
    # a nested call refused because this worker is stopping: after the side effect
    raise ShuttingDown("a nested call of 'jobs.audit'")

def audit(input):
    return "audited"

async def slow_db(config):
    await anyio.sleep(1)
    return "db"

def ready(input, db):
    return db
"""

CHARGE_WORKER = """
assemble: 1
id: charge_worker
resources:
  bus:
    use: tunnel.nats
    config: {subject_prefix: "${env.PREFIX}", serve: [jobs.charge, jobs.ready]}
  db: {init: charge_code:slow_db}
tasks:
  jobs.charge: {run: charge_code:charge, dependencies: {audit: jobs.audit}}
  jobs.audit: {run: charge_code:audit}
  jobs.ready: {run: charge_code:ready, dependencies: {db: db}}
"""

CHARGE_CALLER = """
assemble: 1
id: charge_caller
resources:
  bus:
    use: tunnel.nats
    config:
      subject_prefix: "${env.PREFIX}"
      call: [jobs.charge, jobs.ready]
      timeout: 10s
      retries: 10
tasks:
  jobs.charge: {remote: true}
  jobs.ready: {remote: true, idempotent: true}
"""


async def test_a_call_cut_off_by_a_stopping_worker_is_not_sent_again(
    tmp_path: Path, nats_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a call a stopping worker refused before running it is sent elsewhere: one
    whose task started and then met the shutdown (a nested call refused) comes back as
    an error, and is not run again by the other worker."""
    charges = tmp_path / "charges.txt"
    monkeypatch.setenv("CHARGES", str(charges))
    env = {"PREFIX": prefix, "NATS_URL": nats_url}
    async with (
        node(tmp_path, "w1", CHARGE_WORKER, env, charge_code=CHARGE_CODE),
        node(tmp_path, "w2", CHARGE_WORKER, env, charge_code=CHARGE_CODE),
        node(tmp_path, "c", CHARGE_CALLER, env) as caller,
    ):
        await anyio.sleep(0.2)  # the workers subscribe once running
        with pytest.raises(RemoteError) as cut:
            await caller.run_task("jobs.charge")
    assert cut.value.code == "runner.shutting_down"
    assert charges.read_text().splitlines() == ["charged"]  # once: not sent again


async def test_a_worker_takes_calls_only_once_it_runs(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    """A worker whose resources take 1 s to start takes no call before: the caller's
    calls wait for a worker that can answer (idempotent: retried past no responders)."""
    env = {"PREFIX": prefix, "NATS_URL": nats_url}
    async with node(tmp_path, "c", CHARGE_CALLER, env) as caller:
        async with anyio.create_task_group() as tg:
            results: list[Any] = []
            answered = anyio.Event()

            async def call() -> None:
                results.append(await caller.run_task("jobs.ready"))
                if len(results) == 5:
                    answered.set()

            async def worker() -> None:
                async with node(tmp_path, "w", CHARGE_WORKER, env, charge_code=CHARGE_CODE):
                    # serves until the calls are answered, not for a fixed time: retries
                    # back off up to 1 s, and a stalled loop could outlast a short window
                    with anyio.fail_after(20):
                        await answered.wait()

            tg.start_soon(worker)
            await anyio.sleep(0.5)  # the worker is starting (its db takes 1 s)
            for _ in range(5):
                tg.start_soon(call)
        assert results == ["db"] * 5  # none reached a task whose resource was not ready


async def test_a_process_without_the_hooks_publishes_durable_events_but_takes_none(
    tmp_path: Path, nats_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "handled.txt"
    monkeypatch.setenv("HANDLED", str(path))
    env = {"PREFIX": prefix, "NATS_URL": nats_url, "HANDLED": str(path)}
    api = DURABLE.replace("hooks:\n  record: {on: order.placed, run: durable_code:record}\n", "")
    assert "hooks" not in api
    procs = start_durable_workers(tmp_path, env, ["worker"])
    try:
        async with node(tmp_path, "api", api, env, durable_code=DURABLE_CODE) as rt:
            for n in range(40):
                await rt.emit("order.placed", {"n": n})
            seen = await wait_for(path, 40, 30)
        assert {n for _, n in seen} == set(range(40))
        assert {w for w, _ in seen} == {"worker"}  # the api took none of them
    finally:
        kill_all(procs)
        await purge(nats_url, prefix)


async def test_a_hook_slower_than_ack_wait_is_not_delivered_twice(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    """The consumer tells JetStream the event is in progress while its hooks run."""
    path = tmp_path / "handled.txt"
    env = {"PREFIX": prefix, "NATS_URL": nats_url, "HANDLED": str(path)}
    procs = start_durable_workers(tmp_path, env, ["a", "b"])
    try:
        await publish_raw(nats_url, prefix, {"n": 7, "sleep": 2.5})  # ack_wait is 1 s
        await wait_for(path, 1, 20)
        await anyio.sleep(2)  # a second delivery would have finished by now
        assert [n for _, n in handled(path)] == [7]  # handled once
    finally:
        kill_all(procs)
        await purge(nats_url, prefix)


def test_zero_timeouts_are_config_errors(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: z
        resources:
          bus: {use: tunnel.nats, config: {connect_timeout: 0s, timeout: 0}}
        """,
    )
    assert sorted(m for *_, m in found) == [
        "config of 'tunnel.nats' (plugin tunnel): connect_timeout must be at least 1ms",
        "config of 'tunnel.nats' (plugin tunnel): timeout must be at least 1ms",
    ]
