"""Hostile input on NATS (``tunnel.nats``), sent as any client of the NATS server could:
calls, plain events and durable (JetStream) events whose bodies hold values no store
keeps, or are not Runner's serializer format at all (graph cycles and bombs, unknown
``__type`` records, invalid UTF-8), a flood of them, an answer past NATS's
``max_payload``, hostile request ids.

What must come back for a call: an error envelope (422 ``runner.validation`` naming the
field, or ``INVALID_JSON``) before the task runs; never an exception's class, an
address or a secret; never silence (a caller would wait for its whole timeout). What
must happen to a bad event: no hook runs, a durable one is terminated (never delivered
again), and the worker goes on serving. The worker is a real ``assemble run`` process,
its log in the suite's log book: one line per kind of refusal, then counts, never a
traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from .servers import LogBook
from .test_tunnel_http import HOSTILE_VALUES, LEAKS, NOT_THE_PROTOCOL, VALUE_IDS

pytestmark = pytest.mark.anyio

CODE = """
import os

COUNTS = {"tasks": 0, "hooks": 0, "durable": 0}
SECRET = os.environ["BOOM_SECRET"]


def charge(input):
    COUNTS["tasks"] += 1
    return {"charged": input["amount"]}


def echo(input):
    COUNTS["tasks"] += 1
    return input


def big(input):
    COUNTS["tasks"] += 1
    return "x" * input["size"]


def boom(input):
    COUNTS["tasks"] += 1
    raise KeyError(f"customer {SECRET} not found on postgres@db.internal:5432")


def heard(emission):
    COUNTS["hooks"] += 1


def placed(emission):
    COUNTS["durable"] += 1


def counts(input):
    return dict(COUNTS)
"""

MANIFEST = """
assemble: 1
id: hostile_nats
resources:
  bus:
    use: tunnel.nats
    config:
      url: "${env.NATS_URL}"
      subject_prefix: "${env.PREFIX}"
      serve: [billing.charge, app.echo, app.big, app.boom, probe.counts]
      events: [user.created]
      durable_events: [order.placed]
      ack_wait: 1s
events:
  user.created: {}
  order.placed: {}
hooks:
  heard: {on: user.created, run: nats_code:heard}
  placed: {on: order.placed, run: nats_code:placed}
tasks:
  billing.charge:
    run: nats_code:charge
    input_schema:
      type: object
      required: [amount, card]
      properties:
        amount: {type: number, exclusiveMinimum: 0}
        card: {type: string, pattern: "^[0-9]{12,19}$"}
      additionalProperties: false
  app.echo: {run: nats_code:echo}
  app.big: {run: nats_code:big}
  app.boom: {run: nats_code:boom}
  probe.counts: {run: nats_code:counts}
"""

CARD = "4242424242424242"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # nats-py runs on asyncio only


@dataclass
class Worker:
    prefix: str
    url: str
    secret: str  # in app.boom's message: never in an answer
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def worker(
    tmp_path_factory: pytest.TempPathFactory, log_book: LogBook, _nats_answers: str
) -> Iterator[Worker]:
    folder = tmp_path_factory.mktemp("nats-hostile")
    (folder / "app.yaml").write_text(MANIFEST)
    (folder / "nats_code.py").write_text(CODE)
    prefix = f"hostile{uuid.uuid4().hex[:10]}"
    secret = f"cus-{uuid.uuid4().hex[:12]}"  # the task's own message: its log may say it
    env = {**os.environ, "NATS_URL": _nats_answers, "PREFIX": prefix, "BOOM_SECRET": secret}
    env.pop("ASSEMBLE_PLUGINS", None)
    log = folder / "nats-worker.log"
    log_book.logs.append(log)
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would block the worker
        proc = subprocess.Popen(
            [sys.executable, "-m", "assembler", "run", str(folder / "app.yaml")],
            env=env,
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Worker(prefix, _nats_answers, secret, proc, log)
    deadline = time.monotonic() + 30
    while "is running" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the NATS worker did not start in 30 s"
        time.sleep(0.05)
    yield running
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover - a hang is the failure
            proc.kill()
            proc.wait()
    anyio.run(_drop_stream, running)
    text = log.read_text()
    assert proc.returncode == 0, text[-4000:]
    # app.boom's unexpected error, once (then counted): no other traceback
    assert text.count("Traceback") == 1, text[-4000:]


async def _drop_stream(worker: Worker) -> None:
    import nats

    from assemble_tunnel._nats import stream_name

    nc = await nats.connect(worker.url)
    try:
        await nc.jetstream().delete_stream(stream_name(worker.prefix))
    except Exception:  # pragma: no cover - already gone
        pass
    finally:
        await nc.close()


@asynccontextmanager
async def connected(worker: Worker) -> AsyncIterator[Any]:
    import nats

    nc = await nats.connect(worker.url)
    try:
        yield nc
    finally:
        await nc.close()


async def call(
    nc: Any, worker: Worker, task: str, body: bytes | str, **headers: str
) -> tuple[bytes, dict[str, Any]]:
    """``body`` as sent (bytes: not even valid UTF-8 need be); ``(raw answer, envelope)``.
    No answer within 10 s fails (a caller would wait for its whole timeout)."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    msg = await nc.request(
        f"{worker.prefix}.task.{task}", data, timeout=10, headers=headers or None
    )
    raw: bytes = msg.data
    return raw, json.loads(raw)


def sound(raw: bytes, worker: Worker, *, limit: int = 4096) -> None:
    text = raw.decode()
    assert not LEAKS.search(text), text[:500]
    assert worker.secret not in text
    assert len(raw) < limit, (len(raw), text[:300])


def refusal(envelope: dict[str, Any]) -> tuple[str, list[list[Any]]]:
    """``(code, the paths of the fields named)`` of an error envelope."""
    assert envelope["ok"] is False, envelope
    error = envelope["error"]
    data = error.get("data") or {}
    return error["code"], [e["path"] for e in data.get("errors", [])]


async def counts(nc: Any, worker: Worker) -> dict[str, int]:
    _, envelope = await call(nc, worker, "probe.counts", "{}")
    assert envelope["ok"] is True, envelope
    result: dict[str, int] = envelope["result"]
    return result


# -- calls -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "why"), HOSTILE_VALUES, ids=VALUE_IDS)
async def test_a_call_with_a_value_no_store_keeps_is_422_naming_the_field(
    worker: Worker, value: str, why: str
) -> None:
    cases = [  # (task, body, the field named)
        ("app.echo", f'{{"input": {{"field": {value}}}}}', ["field"]),
        ("app.echo", f'{{"input": {{"items": [1, {{"deep": {value}}}]}}}}', ["items", 1, "deep"]),
        ("app.echo", f'{{"input": {value}}}', []),
        # the case: NaN passed `exclusiveMinimum: 0` and was charged
        ("billing.charge", f'{{"input": {{"amount": {value}, "card": "{CARD}"}}}}', ["amount"]),
    ]
    async with connected(worker) as nc:
        before = await counts(nc, worker)
        for task, body, field in cases:
            raw, envelope = await call(nc, worker, task, body)
            sound(raw, worker)
            assert refusal(envelope) == ("runner.validation", [field]), (why, task, body[:80])
            assert envelope["error"]["httpCode"] == 422
        assert await counts(nc, worker) == before  # the task never ran


@pytest.mark.parametrize(("body", "why"), NOT_THE_PROTOCOL, ids=[w for _, w in NOT_THE_PROTOCOL])
async def test_a_call_that_is_not_the_protocol_is_invalid_json_and_nothing_runs(
    worker: Worker, body: str | bytes, why: str
) -> None:
    async with connected(worker) as nc:
        before = await counts(nc, worker)
        with anyio.fail_after(10):
            raw, envelope = await call(nc, worker, "app.echo", body)
        sound(raw, worker)
        assert refusal(envelope) == ("INVALID_JSON", []), (why, envelope)
        assert await counts(nc, worker) == before


async def test_a_failing_task_answers_internal_error_without_its_message(worker: Worker) -> None:
    async with connected(worker) as nc:
        raw, envelope = await call(nc, worker, "app.boom", '{"input": {}}')
        sound(raw, worker)
        assert refusal(envelope)[0] == "INTERNAL_ERROR"


async def test_an_answer_past_max_payload_is_an_error_at_once_not_a_silence(
    worker: Worker,
) -> None:
    async with connected(worker) as nc:
        size = nc.max_payload + 1
        start = time.monotonic()
        raw, envelope = await call(nc, worker, "app.big", json.dumps({"input": {"size": size}}))
        assert time.monotonic() - start < 5  # not the caller's timeout
        sound(raw, worker)
        assert refusal(envelope)[0] == "INTERNAL_ERROR"
        _, fine = await call(nc, worker, "app.big", '{"input": {"size": 1000}}')
        assert fine == {"ok": True, "result": "x" * 1000}


async def test_hostile_request_ids_are_replaced_and_calls_still_answered(worker: Worker) -> None:
    async with connected(worker) as nc:
        for rid in ("a b", "x" * 5000, "\u00e9t\u00e9", "../../etc", "id\ttab"):
            _, envelope = await call(
                nc, worker, "app.echo", '{"input": 1}', **{"x-runner-request-id": rid}
            )
            assert envelope == {"ok": True, "result": 1}
    assert "x" * 200 not in worker.log.read_text()


async def test_a_flood_of_bad_calls_is_answered_and_logs_nothing_per_call(worker: Worker) -> None:
    body = '{"input": {"amount": {"__type": "NonFiniteNumber", "value": "NaN"}, "card": "%s"}}'
    before = worker.log.stat().st_size
    async with connected(worker) as nc:
        answers: list[str] = []

        async def one() -> None:
            _, envelope = await call(nc, worker, "billing.charge", body % CARD)
            answers.append(refusal(envelope)[0])

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(1000):
                    tg.start_soon(one)
        assert answers == ["runner.validation"] * 1000
        _, fine = await call(
            nc, worker, "billing.charge", f'{{"input": {{"amount": 5, "card": "{CARD}"}}}}'
        )
        assert fine == {"ok": True, "result": {"charged": 5}}
    assert worker.log.stat().st_size - before < 4096  # a caller's mistake is not logged


# -- events ------------------------------------------------------------------------------


async def wait_until(nc: Any, worker: Worker, key: str, at_least: int) -> dict[str, int]:
    with anyio.fail_after(10):
        while (now := await counts(nc, worker))[key] < at_least:
            await anyio.sleep(0.05)
    return now


EVENT_CASES = [value for value, _ in HOSTILE_VALUES[:8]] + [
    body if isinstance(body, str) else body.decode("latin-1") for body, _ in NOT_THE_PROTOCOL[:6]
]


async def test_bad_events_reach_no_hook_are_logged_once_and_the_next_good_one_is_heard(
    worker: Worker,
) -> None:
    async with connected(worker) as nc:
        before = await counts(nc, worker)
        size = worker.log.stat().st_size
        for _ in range(20):  # a flood: the log must not grow per event
            for value in EVENT_CASES:
                data = value.encode("utf-8", "surrogatepass")
                await nc.publish(f"{worker.prefix}.event.user.created", data)
        await nc.publish(f"{worker.prefix}.event.user.created", b'{"name": "ada"}')
        await nc.flush()
        after = await wait_until(nc, worker, "hooks", before["hooks"] + 1)
        assert after["hooks"] == before["hooks"] + 1  # only the good one
    grown = worker.log.read_text()[size:]
    assert len(grown) < 20 * 1024, len(grown)  # one line per kind, not per event
    assert "dropped" in grown and "Traceback" not in grown


async def test_bad_durable_events_are_terminated_not_delivered_again(worker: Worker) -> None:
    async with connected(worker) as nc:
        js = nc.jetstream()
        before = await counts(nc, worker)
        subject = f"{worker.prefix}.durable.order.placed"
        for value in EVENT_CASES:
            await js.publish(subject, value.encode("utf-8", "surrogatepass"))
        await js.publish(subject, b'{"n": 1}')
        after = await wait_until(nc, worker, "durable", before["durable"] + 1)
        await anyio.sleep(2.5)  # past ack_wait (1s) twice: anything not settled comes back
        assert await counts(nc, worker) == after
        assert after["durable"] == before["durable"] + 1
        info = await js.consumers_info(_stream(worker))
        pending = sum(c.num_ack_pending + c.num_pending for c in info)
        assert pending == 0, [(c.name, c.num_ack_pending, c.num_pending) for c in info]


def _stream(worker: Worker) -> str:
    from assemble_tunnel._nats import stream_name

    return stream_name(worker.prefix)
