"""Hostile input at the tunnel's HTTP edge (``tunnel.server``: BlueLibs Runner's HTTP
tunnel protocol), sent as a peer holding the token, or a stranger without it, would:
values no store keeps, bodies that are not the protocol (graph-format cycles and
bombs, unknown ``__type`` records, nesting past the serializer's depth), megabyte
fields, ids with globs and traversals, tokens that are wrong, doubled or huge.

What must come back: 422 ``runner.validation`` naming the field, 400 ``INVALID_JSON``,
401, 403 or 413, before any task or hook runs (they count their runs); never a 5xx but
for a task that really failed (``INTERNAL_ERROR``, nothing of its message); never a
traceback, an address, a driver's or an exception's class name; never an echo longer
than a short prefix of what was sent. The server is a real ``assemble run`` process
(a hang shows as a timeout here, not as a stuck test), its log in the suite's log book.
"""

# ruff: noqa: E501  (the tables of hostile cases read one case per line)

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .servers import LogBook, free_port

MIB = 1024 * 1024
CARD = "4242424242424242"

TASKS = """
import os

from runner.errors import ResourceUnavailable

COUNTS = {"tasks": 0, "hooks": 0}
SECRET = os.environ["BOOM_SECRET"]


def charge(input):
    COUNTS["tasks"] += 1
    return {"charged": input["amount"]}


def echo(input):
    COUNTS["tasks"] += 1
    return input


def boom(input):
    COUNTS["tasks"] += 1
    raise KeyError(f"customer {SECRET} not found on postgres@db.internal:5432")


class StripeLike(Exception):  # a third-party error that looks typed
    code = "api_key_invalid"
    http_status = 401


async def signup(input, created):
    COUNTS["tasks"] += 1
    await created(input)
    return {"ok": True}


def heard(emission):
    COUNTS["hooks"] += 1
    kind = emission.data.get("kind") if isinstance(emission.data, dict) else None
    if kind == "lookalike":
        raise StripeLike(f"Invalid API Key provided: {SECRET}")
    if kind == "db":
        raise ResourceUnavailable(
            "db",
            "it refuses connections",
            detail="ConnectionRefusedError: [Errno 111] ('10.0.0.5', 5432)",
            retry_after=2,
        )


def counts(input):
    return dict(COUNTS)
"""

MANIFEST = """
assemble: 1
id: hostile_tunnel
resources:
  tunnel:
    use: tunnel.server
    config:
      port: ${env.TUNNEL_PORT}
      tokens: ["${env.TUNNEL_TOKEN}"]
      tasks: [billing.charge, app.echo, app.boom, app.signup, probe.counts]
      events: [user.created]
events:
  user.created: {}
hooks:
  heard: {on: user.created, run: tunnel_tasks:heard}
tasks:
  billing.charge:
    run: tunnel_tasks:charge
    input_schema:
      type: object
      required: [amount, card]
      properties:
        amount: {type: number, exclusiveMinimum: 0}
        card: {type: string, pattern: "^[0-9]{12,19}$"}
      additionalProperties: false
  app.echo: {run: tunnel_tasks:echo}
  app.boom: {run: tunnel_tasks:boom}
  app.signup: {run: tunnel_tasks:signup, dependencies: {created: user.created}}
  app.hidden: {run: tunnel_tasks:echo}
  probe.counts: {run: tunnel_tasks:counts}
"""

#: What no answer may carry: a traceback, an address, a driver's or an exception's
#: class name, the failing task's secret.
LEAKS = re.compile(
    r"Traceback|File \"|\b\d{1,3}(\.\d{1,3}){3}\b|localhost:\d|db\.internal|:5432|"
    r"KeyError|StripeLike|ConnectionRefused|OverflowError|RecursionError|SerializerError|"
    r"starlette|uvicorn|h11"
)


@dataclass
class Tunnel:
    """A running ``tunnel.server`` app: its base URL, token, log and process."""

    base: str
    port: int
    token: str
    secret: str  # in app.boom's and the lookalike's messages: never in an answer
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def tunnel(tmp_path_factory: pytest.TempPathFactory, log_book: LogBook) -> Iterator[Tunnel]:
    folder = tmp_path_factory.mktemp("tunnel-http")
    (folder / "app.yaml").write_text(MANIFEST)
    (folder / "tunnel_tasks.py").write_text(TASKS)
    port = free_port()
    token = log_book.secret(f"hostile-tunnel-{uuid.uuid4().hex}")  # never in a log
    secret = f"cus-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "TUNNEL_PORT": str(port), "TUNNEL_TOKEN": token, "BOOM_SECRET": secret}
    env.pop("ASSEMBLE_PLUGINS", None)
    log = folder / "tunnel-server.log"
    log_book.logs.append(log)
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(
            [sys.executable, "-m", "assembler", "run", str(folder / "app.yaml")],
            env=env,
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Tunnel(f"http://127.0.0.1:{port}/__runner", port, token, secret, proc, log)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            r = httpx.get(f"{running.base}/discovery", headers={"x-runner-token": token})
            if r.status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the tunnel server did not answer in 30 s"
        time.sleep(0.1)
    yield running
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hang is the failure
        proc.kill()
        proc.wait()
        raise AssertionError("the tunnel server did not stop on SIGTERM") from None
    assert proc.returncode == 0, log.read_text()[-4000:]


@pytest.fixture(scope="module")
def http(tunnel: Tunnel) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tunnel.base, timeout=30) as client:
        yield client


def post(
    http: httpx.Client, tunnel: Tunnel, path: str, body: bytes | str, **headers: str
) -> httpx.Response:
    """``body`` as sent (bytes: not even valid UTF-8 need be), with the right token."""
    return http.post(
        path,
        content=body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body,
        headers={"x-runner-token": tunnel.token, "content-type": "application/json", **headers},
    )


def counts(http: httpx.Client, tunnel: Tunnel) -> dict[str, int]:
    """How often the tasks and the hooks ran (the probe's own calls not counted)."""
    r = post(http, tunnel, "/task/probe.counts", "{}")
    assert r.status_code == 200, r.text
    result: dict[str, int] = r.json()["result"]
    return result


def sound(r: httpx.Response, tunnel: Tunnel, *, limit: int = 4096) -> None:
    """No 5xx, no leak, a small body."""
    assert r.status_code < 500, (r.status_code, r.text[:500])
    assert not LEAKS.search(r.text), r.text[:500]
    assert tunnel.secret not in r.text and tunnel.token not in r.text
    assert len(r.content) < limit, (len(r.content), r.text[:300])


def refusal(r: httpx.Response) -> tuple[int, str, list[list[Any]]]:
    """``(status, code, the paths of the fields named)`` of an error envelope."""
    envelope = json.loads(r.content)
    assert envelope["ok"] is False, r.text[:300]
    error = envelope["error"]
    data = error.get("data") or {}
    return r.status_code, error["code"], [e["path"] for e in data.get("errors", [])]


# -- values no store keeps: 422 naming the field, before any task or hook ----------------

#: ``(wire text of a value, why it must be refused)``: each a class of defect.
HOSTILE_VALUES = [
    ('"\\ud800"', "a lone high surrogate, as an escape"),
    ('"x\\udc80y"', "a lone low surrogate inside text"),
    ('"\\udfff\\ud800"', "a surrogate pair the wrong way round"),
    ('"\ud800"', "a lone surrogate as raw bytes (CESU-8: not UTF-8)"),
    ('"a\\u0000b"', "a NUL character"),
    ('{"__type": "NonFiniteNumber", "value": "NaN"}', "Runner's NaN"),
    ('{"__type": "NonFiniteNumber", "value": "Infinity"}', "Runner's Infinity"),
    ('{"__type": "NonFiniteNumber", "value": "-Infinity"}', "Runner's -Infinity"),
    ("1e400", "a JSON number past the largest double"),
    ("-1e400", "a negative one"),
    ("1" + "0" * 400, "a JSON integer past the largest double (JS reads Infinity)"),
    ("-" + "9" * 5000, "an integer of more digits than Python's int() reads"),
    ('{"__type": "BigInt", "value": "9223372036854775808"}', "a BigInt past 2**63 - 1"),
    ('{"__type": "BigInt", "value": "-9223372036854775809"}', "a BigInt under -2**63"),
    ('{"__type": "BigInt", "value": "' + "7" * 4000 + '"}', "a BigInt of 4,000 digits"),
]
VALUE_IDS = [why for _, why in HOSTILE_VALUES]


@pytest.mark.parametrize(("value", "why"), HOSTILE_VALUES, ids=VALUE_IDS)
def test_a_value_no_store_keeps_is_422_naming_the_field_and_nothing_runs(
    tunnel: Tunnel, http: httpx.Client, value: str, why: str
) -> None:
    before = counts(http, tunnel)
    cases = [  # (path, body, the field named)
        ("/task/app.echo", f'{{"input": {{"field": {value}}}}}', ["field"]),
        ("/task/app.echo", f'{{"input": {{"items": [1, {{"deep": {value}}}]}}}}', ["items", 1, "deep"]),
        ("/task/app.echo", f'{{"input": {value}}}', []),  # the input itself
        ("/task/app.echo", f'{{"input": {{"a": 1, "a": {value}}}}}', ["a"]),  # the last key wins
        # the case: NaN passed `exclusiveMinimum: 0` and was charged
        ("/task/billing.charge", f'{{"input": {{"amount": {value}, "card": "{CARD}"}}}}', ["amount"]),
        ("/task/billing.charge", f'{{"amount": {value}, "card": "{CARD}"}}', ["amount"]),  # bare
        ("/event/user.created", f'{{"payload": {{"field": {value}}}}}', ["field"]),
        ("/event/user.created", f'{{"payload": {value}, "returnPayload": true}}', []),
    ]  # fmt: skip
    for path, body, field in cases:
        r = post(http, tunnel, path, body)
        sound(r, tunnel)
        assert refusal(r) == (422, "runner.validation", [field]), (why, path, body[:80], r.text)
        assert r.json()["error"]["httpCode"] == 422
    assert counts(http, tunnel) == before  # no task, no hook ran


def test_a_hostile_key_is_refused_and_shown_escaped_and_short(
    tunnel: Tunnel, http: httpx.Client
) -> None:
    before = counts(http, tunnel)
    for key in ("\\ud800", "a\\u0000", "\\udfff" + "k" * 5000):
        r = post(http, tunnel, "/task/app.echo", f'{{"input": {{"{key}": 1}}}}')
        sound(r, tunnel)
        status, code, (path,) = refusal(r)
        assert (status, code) == (422, "runner.validation")
        (shown,) = path
        assert shown.isprintable() and len(shown) <= 64, shown  # escaped, cut short
        shown.encode()  # text again: no lone surrogate
    assert counts(http, tunnel) == before


# -- bodies that are not the protocol: 400 INVALID_JSON -----------------------------------


def graph(root: Any, nodes: dict[str, Any]) -> str:
    return json.dumps({"__graph": True, "version": 1, "root": root, "nodes": nodes})


def doubling(levels: int, wrap: str = "input") -> str:
    """A graph-format bomb: each node an array of the next one, twice; ``2**levels``
    leaves once the shared references are written out."""
    nodes: dict[str, Any] = {
        f"n{i}": {"kind": "array", "value": [{"__ref": f"n{i + 1}"}] * 2} for i in range(levels)
    }
    nodes[f"n{levels}"] = {"kind": "array", "value": ["x"]}
    nodes["top"] = {"kind": "object", "value": {wrap: {"__ref": "n0"}}}
    return graph({"__ref": "top"}, nodes)


def _self(kind: str, value: Any) -> dict[str, Any]:
    return {"kind": kind, "value": value}


NOT_THE_PROTOCOL: list[tuple[str | bytes, str]] = [
    ('{"input": NaN}', "NaN as JSON.parse refuses it"),
    ('{"input": [Infinity, -Infinity]}', "Infinity"),
    ('{"input": "a\x00b"}', "a raw control character in a string"),
    ('{"input": ' + "[" * 300 + "]" * 300 + "}", "nesting past the serializer's depth"),
    ("[" * 100_000, "100,000 open brackets"),
    ('{"a":' * 50_000, "50,000 open objects"),
    ('{"input": {"__type": "Nope", "value": 1}}', "an unknown __type"),
    ('{"input": {"__type": "Symbol", "value": "x"}}', "a JS Symbol"),
    ('{"input": {"__type": "Date", "value": "yesterday"}}', "an Invalid Date"),
    ('{"input": {"__type": "Date", "value": "+275760-09-13T00:00:00.000Z"}}', "year 275760"),
    ('{"input": {"__type": "Date", "value": 1e300}}', "a Date of 1e300 ms"),
    ('{"input": {"__type": "Map", "value": [[{"k": 1}, 2]]}}', "an unhashable Map key"),
    ('{"input": {"__type": "Map", "value": 5}}', "a Map that is not pairs"),
    ('{"input": {"__type": "Set", "value": [[1], {"a": 1}]}}', "an unhashable Set item"),
    ('{"input": {"__type": "Buffer", "value": [256, -1]}}', "bytes out of range"),
    ('{"input": {"__type": "Float64Array", "value": [1, 2, 3]}}', "a typed array cut short"),
    ('{"input": {"__type": "BigInt", "value": "12x"}}', "a BigInt that is not a number"),
    ('{"input": {"__type": "BigInt", "value": "' + "9" * 5000 + '"}}', "a 5,000-digit BigInt"),
    ('{"input": {"__type": "NonFiniteNumber", "value": "nan"}}', "a NonFiniteNumber in lower case"),
    ('{"input": {"__type": "NonFiniteNumber", "value": 5}}', "a NonFiniteNumber of 5"),
    ('{"input": {"__type": "RegExp", "value": {"pattern": "(a+)+$", "flags": "zz"}}}', "RegExp flags"),
    ('{"input": {"__type": "Error", "value": {"name": 1, "message": []}}}', "an Error of the wrong types"),
    (graph({"__ref": "a"}, {"a": _self("object", {"input": {"__ref": "a"}})}), "a graph that contains itself"),
    (graph({"input": {"__ref": "a"}}, {"a": _self("array", [1, {"__ref": "a"}])}), "an array in a cycle"),
    (graph({"input": {"__ref": "m"}}, {"m": {"kind": "type", "type": "Map", "value": [["k", {"__ref": "m"}]]}}), "a Map in a cycle"),
    (graph({"input": {"__ref": "a"}}, {"a": _self("object", {"b": {"__ref": "b"}}), "b": _self("array", [{"__ref": "a"}])}), "a cycle through two nodes"),
    (graph({"input": {"__ref": "missing"}}, {}), "a reference to no node"),
    (graph({"input": {"__ref": "__proto__"}}, {}), "a reference named __proto__"),
    (doubling(40), "a graph of 2**40 values in 3 KB"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b'{"input": "\xc3"}', "a cut UTF-8 sequence"),
    ('{"input": ', "cut short"),
    ('{"input": 1}{"input": 2}', "two documents"),
    ("{'input': 1}", "single quotes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "why"), NOT_THE_PROTOCOL, ids=[why for _, why in NOT_THE_PROTOCOL]
)
def test_a_body_that_is_not_the_protocol_is_400_and_nothing_runs(
    tunnel: Tunnel, http: httpx.Client, body: str | bytes, why: str
) -> None:
    before = counts(http, tunnel)
    for path in ("/task/app.echo", "/event/user.created"):
        started = time.monotonic()
        r = post(http, tunnel, path, body)
        assert time.monotonic() - started < 5, why  # a cycle or a bomb is no hang
        sound(r, tunnel, limit=256)
        assert refusal(r) == (400, "INVALID_JSON", []), (why, r.text)
        assert r.json()["error"]["message"] == "Invalid JSON body"  # nothing of the body
    assert counts(http, tunnel) == before


def test_what_runner_reads_as_plain_values_runs_as_runner_would(
    tunnel: Tunnel, http: httpx.Client
) -> None:
    """Odd but valid bodies: a bare value is the input, the last duplicate key wins,
    prototype keys are dropped (as Runner drops them), a non-string ``__type`` is data."""
    for body, result in [
        ("5", 5),
        ('"text"', "text"),
        ("null", None),
        ("", None),
        ("[1, 2]", [1, 2]),
        ('{"input": 1, "input": 2}', 2),
        ('{"input": {"a": "\\ud800", "a": "fine"}}', {"a": "fine"}),
        ('{"input": {"__proto__": {"admin": true}, "constructor": {"prototype": 1}, "a": 1}}',
         {"a": 1}),
        ('{"input": {"__type": 5, "value": 1}}', {"$runner.escape::__type": 5, "value": 1}),
        ("\ufeff" + '{"input": "bom"}', "bom"),
        ('{"input": 123456789012345678901234567890}', 1.2345678901234568e29),  # a JS double
    ]:  # fmt: skip
        before = counts(http, tunnel)["tasks"]
        r = post(http, tunnel, "/task/app.echo", body)
        assert (r.status_code, r.json()) == (200, {"ok": True, "result": result}), body
        assert counts(http, tunnel)["tasks"] == before + 1


def test_a_graph_bomb_under_the_cap_is_answered_in_bounded_time(
    tunnel: Tunnel, http: httpx.Client
) -> None:
    """2**18 leaves (about 500,000 values) from 1.4 KB: under the serializer's cap of
    1,000,000 values, so it runs; it must not hang nor fail the server."""
    started = time.monotonic()
    r = post(http, tunnel, "/task/app.echo", doubling(18))
    assert r.status_code == 200, r.text[:300]
    assert time.monotonic() - started < 15
    r = post(http, tunnel, "/task/app.echo", doubling(18).replace('["x"]', '["\\u0000"]'))
    assert refusal(r)[:2] == (422, "runner.validation")  # the first NULs named, no more
    assert len(refusal(r)[2]) == 20
    sound(r, tunnel, limit=8192)


# -- size: a megabyte in, a small answer out -----------------------------------------------


def test_megabyte_values_and_keys_get_small_answers(tunnel: Tunnel, http: httpx.Client) -> None:
    mb = 1_000_000
    deep: Any = {f"n{i}": "\x00" for i in range(30)}
    for _ in range(150):  # 20 fields 150 keys deep: 20 paths of 15 KB, unless cut short
        deep = {"k" * 100: deep}
    before = counts(http, tunnel)
    for path, body in [
        ("/task/billing.charge", {"amount": 1, "card": "x" * mb}),  # fails its pattern
        ("/task/billing.charge", {"amount": 1, "card": CARD, "k" * mb: 1}),  # an unknown key
        ("/task/billing.charge", {"amount": "9" * mb, "card": CARD}),  # not a number
        ("/task/app.echo", {"k" * mb: "\x00"}),  # a megabyte key holding a NUL
        ("/task/app.echo", {"k" * mb: {"k" * mb: "\ud800"}}),
        ("/task/app.echo", {f"{i}{'k' * 10_000}": "\x00" for i in range(100)}),  # 100 bad
        ("/task/app.echo", ["\x00"] * 50_000),  # 50,000 bad values: 20 named
        ("/task/app.echo", deep),
        ("/event/user.created", {"payload": {"k" * mb: "\x00"}}),
    ]:
        wrapped = body if path.startswith("/event") else {"input": body}
        r = post(http, tunnel, path, json.dumps(wrapped))
        status, code, fields = refusal(r)
        sound(r, tunnel, limit=4096 if len(fields) == 1 else 8192)
        assert (status, code) == (422, "runner.validation"), r.text[:300]
        assert 1 <= len(fields) <= 20
        assert "k" * 200 not in r.text and "x" * 200 not in r.text and "9" * 200 not in r.text
    assert counts(http, tunnel) == before


def test_a_2_mib_request_gets_a_small_error_body(tunnel: Tunnel, http: httpx.Client) -> None:
    """The issue saw a 6 MB error body for a 2 MiB request."""
    before = counts(http, tunnel)
    just_under = {"input": {"amount": 1, "card": "x" * (2 * MIB - 100)}}
    r = post(http, tunnel, "/task/billing.charge", json.dumps(just_under))
    sound(r, tunnel, limit=8192)
    assert refusal(r) == (422, "runner.validation", [["card"]])
    over = {"input": {"amount": 1, "card": "x" * (2 * MIB + 1)}}
    r = post(http, tunnel, "/task/billing.charge", json.dumps(over))
    sound(r, tunnel, limit=8192)
    assert refusal(r) == (413, "PAYLOAD_TOO_LARGE", [])
    assert counts(http, tunnel) == before


# -- ids: globs, traversals, encodings, a 10 KB id -----------------------------------------


def exchange(tunnel: Tunnel, head: bytes, body: bytes = b"{}") -> tuple[int, bytes]:
    """One request as raw bytes (no client normalises its path or headers):
    ``(status, body)``."""
    request = head + f"\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", tunnel.port), timeout=15) as s:
        s.sendall(request + body)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    top, _, answer = raw.partition(b"\r\n\r\n")
    return int(top.split(b" ", 2)[1]), answer


IDS = [
    "billing.*", "*", "**", "app.?cho", "app.[eh]cho", "probe.*",  # globs are not ids
    "app.hidden", "app.hidden/", "app.echo/", "app.echo.",  # unlisted, or not quite
    "../discovery", "app.echo/../../discovery", "%2e%2e%2fdiscovery", "..%2F..%2Fetc%2Fpasswd",
    "app%2Fecho", "app.echo%2F..%2Fapp.hidden",  # encoded slashes
    "app.%D0%B5cho", "%F0%9F%98%80", "%ED%A0%80", "%00", "app.echo%00", "%FF%FE",  # unicode
    "app.echo%0D%0Aset-cookie:%20x=1", "app.echo%20", "%20app.echo", "APP.ECHO",
    "a" * 10_000,
]  # fmt: skip


@pytest.mark.parametrize("kind", ["task", "event"])
def test_ids_that_are_not_exposed_are_refused_with_a_short_answer(
    tunnel: Tunnel, http: httpx.Client, kind: str
) -> None:
    before = counts(http, tunnel)
    for tid in [*IDS, "user.*", "user.created.", "user%2Ecreated%2F"]:
        head = f"POST /__runner/{kind}/{tid} HTTP/1.1\r\nhost: x\r\n"
        head += f"x-runner-token: {tunnel.token}\r\ncontent-type: application/json"
        status, body = exchange(tunnel, head.encode())
        assert status in (400, 403, 404), (tid[:80], status, body[:200])
        assert len(body) < 512, (tid[:80], len(body))
        assert b"a" * 200 not in body
        error = json.loads(body)["error"]
        assert error["code"] in ("FORBIDDEN", "NOT_FOUND", "http.bad_request"), error
        assert not LEAKS.search(body.decode()), body
    assert counts(http, tunnel) == before


def test_a_path_that_is_not_http_is_400(tunnel: Tunnel) -> None:
    for path in (b"/__runner/task/\xff", b"/__runner/task/a b", b"/__runner/task/\x00"):
        status, body = exchange(tunnel, b"POST " + path + b" HTTP/1.1\r\nhost: x")
        assert status == 400, (path, status, body)


# -- tokens: 401, never 500 ----------------------------------------------------------------


def test_every_wrong_token_is_401_never_500_and_never_echoed(
    tunnel: Tunnel, http: httpx.Client
) -> None:
    right = tunnel.token.encode()
    cases: list[list[bytes]] = [  # the x-runner-token headers sent
        [],
        [b""],
        [b"wrong"],
        [right[:-1]],
        [right + b"x"],
        [right.upper()],
        [b"t\xc3\xa4st-" + right],  # UTF-8
        [b"caf\xe9-" + right],  # latin-1
        [b"\xff\xfe\xfd"],
        [b"x" * 10_000],
        [right + b", " + right],  # as a proxy joins two
        [right, b"wrong"],  # repeated: which one would a proxy have checked?
        [b"wrong", right],
        [right, right],
    ]
    before = counts(http, tunnel)
    for values in cases:
        headers = b"".join(b"\r\nx-runner-token: " + v for v in values)
        for path in (b"/__runner/task/app.echo", b"/__runner/event/user.created"):
            status, body = exchange(tunnel, b"POST " + path + b" HTTP/1.1\r\nhost: x" + headers)
            assert status == 401, (values, status, body)
            assert json.loads(body)["error"] == {"message": "Unauthorized", "code": "UNAUTHORIZED"}
        status, body = exchange(
            tunnel, b"GET /__runner/discovery HTTP/1.1\r\nhost: x" + headers, b""
        )
        assert status == 401, (values, status, body)
    for elsewhere in (  # the token anywhere but its header
        {"authorization": f"Bearer {tunnel.token}"},
        {"x-runner-token-2": tunnel.token},
        {"cookie": f"x-runner-token={tunnel.token}"},
    ):
        r = http.post("/task/app.echo", content=b"{}", headers=elsewhere)
        assert r.status_code == 401
    r = http.post("/task/app.echo", params={"token": tunnel.token}, content=b"{}")
    assert r.status_code == 401
    assert counts(http, tunnel) == before


def test_a_token_header_past_the_header_limit_is_refused_not_a_500(tunnel: Tunnel) -> None:
    status, body = exchange(
        tunnel,
        b"POST /__runner/task/app.echo HTTP/1.1\r\nhost: x\r\nx-runner-token: " + b"x" * 100_000,
    )
    assert status in (400, 401, 413, 431), (status, body[:200])


def test_token_guessing_logs_a_count_not_a_line_per_guess(
    tunnel: Tunnel, http: httpx.Client
) -> None:
    def lines() -> int:
        return sum("x-runner-token" in line for line in tunnel.log.read_text().splitlines())

    seen = lines()
    for n in range(300):
        r = http.post("/task/app.echo", content=b"{}", headers={"x-runner-token": f"guess-{n}"})
        assert r.status_code == 401
    time.sleep(0.2)  # the server wrote what it writes
    assert lines() - seen <= 3, tunnel.log.read_text()[-2000:]


# -- failures: nothing of their message ----------------------------------------------------


def test_an_untyped_failure_is_internal_error_and_says_nothing(
    tunnel: Tunnel, http: httpx.Client
) -> None:
    for _ in range(20):
        r = post(http, tunnel, "/task/app.boom", '{"input": {}}')
        assert r.status_code == 500
        assert r.json() == {
            "ok": False,
            "error": {"code": "INTERNAL_ERROR", "message": "Internal Error"},
        }
        assert not LEAKS.search(r.text) and tunnel.secret not in r.text
    time.sleep(0.2)
    log = tunnel.log.read_text()
    # the log has the detail, once: the next 19 are a count, not 19 tracebacks
    assert log.count(f"customer {tunnel.secret} not found") == 1, log[-3000:]


@pytest.mark.parametrize("via", ["task", "event"])
def test_a_failed_hook_is_answered_as_its_cause_never_a_lookalike(
    tunnel: Tunnel, http: httpx.Client, via: str
) -> None:
    """A third-party error carrying ``code`` and ``http_status`` (a payment library's)
    raised by a hook must not reach the caller, nor its message; a typed cause (a
    resource unavailable) is answered as itself, without its detail."""

    def send(kind: str) -> httpx.Response:
        if via == "task":
            return post(http, tunnel, "/task/app.signup", json.dumps({"input": {"kind": kind}}))
        return post(http, tunnel, "/event/user.created", json.dumps({"payload": {"kind": kind}}))

    r = send("lookalike")
    assert (r.status_code, r.json()["error"]) == (
        500,
        {"code": "INTERNAL_ERROR", "message": "Internal Error"},
    )
    assert tunnel.secret not in r.text and "api_key_invalid" not in r.text
    r = send("db")
    assert refusal(r)[:2] == (503, "db.unavailable"), r.text
    assert r.json()["error"]["data"]["retry_after"] == 2
    assert not LEAKS.search(r.text), r.text
    assert send("fine").status_code == 200


# -- arbitrary JSON: never a 5xx, the boundary holds exactly ------------------------------


@dataclass(frozen=True)
class BigInt:
    """A Runner ``BigInt`` record in the generated value."""

    value: int


_DROPPED = {"__proto__", "constructor", "prototype"}

text = st.text(st.characters(codec=None), max_size=30) | st.sampled_from(
    ["\ud800", "\udfff", "a\x00", "\x00", "é" * 300, "x" * 5000, "__type", "$runner.escape::x"]
)
numbers = (
    st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.just(10**400)
    | st.integers(min_value=-(2**70), max_value=2**70).map(BigInt)
)
values = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
    max_leaves=15,
)


def wire(value: Any, literal_nan: bool) -> Any:
    """``value`` as a Runner client writes it (or, ``literal_nan``, as a careless one
    does: NaN and Infinity bare, which JSON.parse refuses)."""
    if isinstance(value, BigInt):
        return {"__type": "BigInt", "value": str(value.value)}
    if isinstance(value, float) and not math.isfinite(value) and not literal_nan:
        tag = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
        return {"__type": "NonFiniteNumber", "value": tag}
    if isinstance(value, list):
        return [wire(v, literal_nan) for v in value]
    if isinstance(value, dict):
        return {k: wire(v, literal_nan) for k, v in value.items()}
    return value


def hostile(value: Any) -> bool:
    """Whether the boundary rule must refuse ``value`` (as the server reads it)."""
    if isinstance(value, BigInt):
        return not -(2**63) <= value.value < 2**63
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):  # a JSON number: a JS double past 2**53
        try:
            return abs(value) > 2**53 and not math.isfinite(float(value))
        except OverflowError:
            return True
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(hostile(v) for v in value)
    assert isinstance(value, dict)
    return any(hostile(k) or hostile(v) for k, v in value.items() if k not in _DROPPED)


def not_finite(value: Any) -> bool:
    """Whether ``value`` holds a NaN or an infinity (written bare when ``literal_nan``)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(not_finite(v) for v in value)
    if isinstance(value, dict):
        return any(not_finite(v) for v in value.values())
    return False


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(value=values, literal_nan=st.booleans(), via=st.sampled_from(["task", "event"]))
def test_arbitrary_json_never_breaks_the_tunnel_and_the_boundary_holds(
    tunnel: Tunnel, http: httpx.Client, value: Any, literal_nan: bool, via: str
) -> None:
    path, key = ("/task/app.echo", "input") if via == "task" else ("/event/user.created", "payload")
    # ensure_ascii: lone surrogates as \\ud800 escapes (they are not UTF-8)
    body = json.dumps({key: wire(value, literal_nan)}, allow_nan=True)
    before = counts(http, tunnel)
    r = post(http, tunnel, path, body)
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code != 200:
        assert not LEAKS.search(r.text), r.text[:500]
        assert len(r.content) < 8192
    ran = counts(http, tunnel) != before
    assert ran == (r.status_code == 200)
    if "__type" in body or "$runner.escape::" in body:
        return  # text spelled like a record: what it means is the serializer's business
    if literal_nan and not_finite(value):
        assert refusal(r) == (400, "INVALID_JSON", []), (value, r.text[:300])
    elif hostile(value):
        assert refusal(r)[:2] == (422, "runner.validation"), (value, r.text[:300])
    else:
        assert r.status_code == 200, (value, r.text[:300])


# -- last: what the server logged ---------------------------------------------------------


def test_the_server_log_holds_only_the_failures_it_answered(tunnel: Tunnel) -> None:
    """Every traceback in the log is a task's or hook's own failure (answered 500); no
    line is long; the token is nowhere (the log book checks that again at the end)."""
    text = tunnel.log.read_text()
    assert tunnel.token not in text
    for line in text.splitlines():
        assert len(line) < 30_000, line[:300]
        if not line.startswith("{"):
            continue
        trace = json.loads(line).get("exception", "")
        if trace:
            assert "KeyError" in trace or "StripeLike" in trace, trace[-1500:]
    assert "--- Logging error ---" not in text
