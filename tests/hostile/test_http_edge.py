"""Hostile input at the HTTP edge (``http.server``, ``http.route``), sent as a stranger on
the network would: text no store keeps, numbers no column holds, bodies that are not
JSON, lying Host headers, connections that trickle or pile up, a SIGTERM under load.

What must come back: a 4xx naming the problem before any task runs (the tasks count
their calls), never a 500 with a traceback or an address in it; bounded answers;
connections closed on time rather than held; answers rather than resets at shutdown.
Real sockets on loopback throughout; the shutdown cases run ``assemble run`` in a
subprocess. uvicorn and Starlette are asyncio-only, so the tests run on asyncio.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import pytest

import runner
from assemble_http import HttpServer
from tests.plugins._apps import app, problems, write

MODULE = "edge_tasks"

TASKS = """
import time

import runner
from runner.errors import ResourceUnavailable

CALLS = []


def echo(input):
    CALLS.append(input)
    return input


def get_item(input):
    CALLS.append(input)
    return {"id": input["id"], "q": input.get("q")}


def who(input):
    return {"client": runner.current_request.use().client}


def unavailable(input):
    raise ResourceUnavailable(
        "db",
        "it refuses connections",
        detail="ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 15432)",
        retry_after=2,
    )


def boom(input):
    raise KeyError("SELECT * FROM users WHERE email = 'a@b.c' -- on 10.0.0.5:5432")


class StripeLike(Exception):  # a third-party error that looks typed
    code = "api_key_invalid"
    http_status = 401


async def signup(input, happened):
    await happened({"kind": input.get("kind", "fine")})
    return {"ok": True}


def on_happened(emission):
    if emission.data["kind"] == "db":
        raise ResourceUnavailable("db", "it refuses connections", detail="('10.0.0.5', 5432)")
    if emission.data["kind"] == "lookalike":
        raise StripeLike("Invalid API Key provided: sk_live_****1234")


def big(input):
    return "x" * 8_000_000  # far more than the socket buffers of a client that never reads


async def busy(input):
    time.sleep(0.02)  # holds the event loop: new connections wait in the listen backlog
    return {"ok": True}
"""

MANIFEST = """
assemble: 1
id: edge
resources:
  server:
    use: http.server
    config: {CONFIG}
tasks:
  echo:
    run: edge_tasks:echo
    tags: {http.route: {method: POST, path: /echo, status: 201}}
    input_schema:
      type: object
      properties:
        name: {type: string, maxLength: 10}
        n: {type: integer}
        x: {type: number}
        tags: {type: array, items: {type: string}}
      additionalProperties: false
  get_item:
    run: edge_tasks:get_item
    tags: {http.route: {method: GET, path: "/items/{id}"}}
    input_schema:
      type: object
      required: [id]
      properties: {id: {type: integer}, q: {type: string}, n: {type: integer}}
  who: {run: edge_tasks:who, tags: {http.route: {method: GET, path: /who}}}
  unavailable: {run: edge_tasks:unavailable, tags: {http.route: {method: GET, path: /db}}}
  boom: {run: edge_tasks:boom, tags: {http.route: {method: GET, path: /boom}}}
  busy: {run: edge_tasks:busy, tags: {http.route: {method: GET, path: /busy}}}
  big: {run: edge_tasks:big, tags: {http.route: {method: GET, path: /big}}}
  signup:
    run: edge_tasks:signup
    dependencies: {happened: happened}
    tags: {http.route: {method: POST, path: /signup}}
events:
  happened: {}
hooks:
  on_happened: {on: happened, run: edge_tasks:on_happened}
"""

JSON = {"content-type": "application/json"}
NO_ADDRESS = ("127.0.0.1", "15432", "10.0.0.5", "5432", "Traceback", "ConnectionRefused")


def shown(r: httpx.Response) -> str:
    """The answer's text less its request id: 32 random hex digits may well hold "5432"."""
    return r.text.replace(r.headers.get("x-request-id") or "\x00", "")


@pytest.fixture
def anyio_backend() -> str:
    """uvicorn and Starlette are asyncio-only."""
    return "asyncio"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record logged under ``assemble.*`` (an app's logger stops propagation)."""
    collect, parent = _Collect(), logging.getLogger("assemble")
    parent.addHandler(collect)
    yield collect.records
    parent.removeHandler(collect)


def manifest(**config: Any) -> str:
    return MANIFEST.replace("{CONFIG}", json.dumps({"port": 0, **config}))


@asynccontextmanager
async def serving(tmp_path: Path, **config: Any) -> AsyncIterator[tuple[int, ModuleType]]:
    """The app running on a free port: ``(port, the tasks' module)``."""
    compiled = app(tmp_path, manifest(**config), edge_tasks=TASKS)
    async with runner.run(compiled) as rt:
        server = rt.resource("server")
        assert isinstance(server, HttpServer)
        yield server.port, sys.modules[MODULE]


def client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)


def calls(module: ModuleType) -> int:
    return len(module.CALLS)


def fields(r: httpx.Response) -> list[str]:
    assert r.status_code == 422, r.text
    return [f["field"] for f in r.json()["error"]["fields"]]


# -- raw sockets ----------------------------------------------------------------------


async def read_all(stream: anyio.abc.ByteStream, within: float = 5) -> bytes:
    """Everything until the server closes (a reset raises)."""
    out = b""
    with anyio.fail_after(within):
        while True:
            try:
                out += await stream.receive()
            except anyio.EndOfStream:
                return out


async def read_response(
    stream: anyio.abc.ByteStream, buffer: bytearray
) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length: ``(status, headers, body)``; the bytes after
    it stay in ``buffer``. EndOfStream if the server closes first."""
    while b"\r\n\r\n" not in buffer:
        buffer += await stream.receive()
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += await stream.receive()
    buffer[:] = rest[length:]
    return int(lines[0].split()[1]), headers, rest[:length]


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), dict(x.lower().split(": ", 1) for x in lines[1:]), body


async def exchange(port: int, data: bytes) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        return await read_all(stream)


# -- the boundary rule ------------------------------------------------------------------


@pytest.mark.anyio
async def test_text_no_store_keeps_and_huge_integers_in_a_body_are_422_naming_the_field(
    tmp_path: Path,
) -> None:
    cases = {
        rb'{"name": "\ud800"}': ["name"],
        rb'{"name": "a\u0000b"}': ["name"],
        rb'{"name": "ok", "tags": ["fine", "\udfff", "x\u0000"]}': ["tags[1]", "tags[2]"],
        b'{"n": 9223372036854775808}': ["n"],
        b'{"n": -9223372036854775809}': ["n"],
        b'{"x": ' + b"1" * 40 + b"}": ["x"],
        rb'{"tags": ["\ud83d\ude00 a pair is fine", "\ud83d"]}': ["tags[1]"],
    }
    async with serving(tmp_path) as (port, module), client(port) as http:
        for body, named in cases.items():
            r = await http.post("/echo", content=body, headers=JSON)
            assert fields(r) == named, body
            assert r.json()["error"]["code"] == "runner.validation"
        # a key that cannot be stored is named by its escape, never echoed raw
        r = await http.post("/echo", content=rb'{"a\u0000b": 1}', headers=JSON)
        assert fields(r) == ["a\\x00b"] and "\x00" not in r.text
        assert calls(module) == 0  # refused before any task ran
        # the edges of the rule: what is fine passes
        ok = {"name": "\U0001f600 ok", "n": 2**63 - 1, "tags": ["\u00e9", "\\u0000 as text"]}
        r = await http.post("/echo", json=ok)
        assert (r.status_code, r.json()) == (201, ok)
        assert calls(module) == 1


@pytest.mark.anyio
async def test_non_finite_numbers_in_a_body_are_400_before_any_task(tmp_path: Path) -> None:
    async with serving(tmp_path) as (port, module), client(port) as http:
        for body in (b'{"x": NaN}', b'{"x": Infinity}', b'{"x": -Infinity}', b'{"x": 1e400}'):
            r = await http.post("/echo", content=body, headers=JSON)
            assert r.status_code == 400 and r.json()["error"]["code"] == "http.bad_json", body
        assert calls(module) == 0


@pytest.mark.anyio
async def test_url_values_are_checked_in_the_path_and_the_query(tmp_path: Path) -> None:
    async with serving(tmp_path) as (port, module), client(port) as http:
        assert fields(await http.get("/items/%00")) == ["id"]
        assert fields(await http.get("/items/9223372036854775808")) == ["id"]
        assert fields(await http.get("/items/-9223372036854775809")) == ["id"]
        assert fields(await http.get("/items/1?q=a%00b")) == ["q"]
        assert fields(await http.get("/items/1?n=99999999999999999999")) == ["n"]
        assert fields(await http.get("/items/1?q=x&q=%00")) == ["q[1]"]  # a repeated key
        # a query key is text too: its NUL is refused by the boundary, named escaped
        r = await http.get("/items/1?%00=1")
        assert fields(r) == ["\\x00"] and "(the key)" in r.json()["error"]["fields"][0]["message"]
        # a lone surrogate's UTF-8 bytes are not UTF-8: decoded as U+FFFD, so stored fine
        r = await http.get("/items/1?q=%ED%A0%80")
        assert r.status_code == 200 and r.json()["q"] == "\ufffd" * 3
        assert calls(module) == 1
        # a body cannot smuggle past the URL check: the URL wins and is checked
        r = await http.get("/items/9223372036854775807")
        assert r.status_code == 200 and r.json()["id"] == 2**63 - 1


# -- media types, redirects -----------------------------------------------------------------


@pytest.mark.anyio
async def test_a_body_that_is_not_json_is_415_and_the_task_never_runs(tmp_path: Path) -> None:
    body = b'{"name": "ada"}'
    async with serving(tmp_path) as (port, module), client(port) as http:
        for kind in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "json",
            "+json",
        ):
            r = await http.post("/echo", content=body, headers={"content-type": kind})
            assert r.status_code == 415, kind
            assert r.json()["error"] == {
                "code": "http.unsupported_media_type",
                "message": "the body must be JSON: send it with Content-Type: application/json",
                "request_id": r.headers["x-request-id"],
            }
        r = await http.post("/echo", content=body)  # no Content-Type at all
        assert r.status_code == 415
        assert calls(module) == 0
        for kind in (
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            "application/vnd.api+json",
        ):
            r = await http.post("/echo", content=body, headers={"content-type": kind})
            assert r.status_code == 201, kind
        # no body, no media type to check
        r = await http.post("/echo", headers={"content-type": "text/plain"})
        assert (r.status_code, r.json()) == (201, {})


@pytest.mark.anyio
async def test_redirects_are_relative_whatever_the_host_header(tmp_path: Path) -> None:
    async with serving(tmp_path) as (port, _):
        for host in (b"evil.example.com", b"127.0.0.1", b"[::1]:99", b"a/b@evil"):
            raw = await exchange(
                port,
                b"GET /items/7/?q=x%20y HTTP/1.1\r\nhost: " + host + b"\r\n"
                b"connection: close\r\n\r\n",
            )
            status, headers, _ = parse(raw)
            assert (status, headers["location"]) == (307, "/items/7?q=x%20y"), host
            assert b"evil" not in raw
        # a path a browser reads as another host is never a Location
        for path in (b"//evil.example.com/", b"/\\evil.example.com/", b"//items/7/"):
            raw = await exchange(
                port, b"GET " + path + b" HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            )
            status, headers, _ = parse(raw)
            assert status == 404 and "location" not in headers, path


def test_no_redirect_to_a_protocol_relative_path_even_when_a_route_matches() -> None:
    """With a catch-all route, ``//evil.example.com`` toggled is a path a route serves:
    still no redirect (a browser would go to evil.example.com)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from assemble_http._server import slash_redirect

    async def any_path(request: Request) -> Response:
        return Response()

    site = Starlette(routes=[Route("/{rest:path}", any_path)])

    def redirect(path: str, query: bytes = b"") -> Any:
        scope = {"type": "http", "method": "GET", "path": path, "query_string": query,
                 "headers": [], "app": site, "root_path": ""}  # fmt: skip
        response = slash_redirect(Request(scope))
        return None if response is None else response.headers["location"]

    assert redirect("//evil.example.com") is None
    assert redirect("/\\evil.example.com") is None
    assert redirect("///") is None
    assert redirect("/a b/é", b"x=1") == "/a%20b/%C3%A9/?x=1"
    assert redirect("/users/") == "/users"


# -- exhaustion -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_slowloris_connections_are_closed_within_the_header_timeout(
    tmp_path: Path, records: list[logging.LogRecord]
) -> None:
    """300 connections trickle header bytes: each is answered 408 and closed within the
    header timeout (from its connect), while /healthz keeps answering; the log has one
    line for them and a count, not 300."""
    timeout = 1.0
    closed: list[float] = []
    answers: list[bytes] = []
    health: list[float] = []

    async def slowloris(port: int) -> None:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        start = time.monotonic()
        async with stream:
            await stream.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            got = b""
            with anyio.fail_after(timeout + 5):
                while True:
                    with anyio.move_on_after(0.2):
                        try:
                            got += await stream.receive()
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            break
                        continue
                    try:
                        await stream.send(b"x-slow: 1\r\n")  # one more header line, never done
                    except (anyio.BrokenResourceError, OSError):
                        break
        closed.append(time.monotonic() - start)
        answers.append(got)

    async def check_health(port: int, until: anyio.Event) -> None:
        async with client(port) as http:
            while not until.is_set():
                start = time.monotonic()
                r = await http.get("/healthz")
                assert r.status_code == 200
                health.append(time.monotonic() - start)
                await anyio.sleep(0.05)

    async with serving(tmp_path, header_timeout=timeout) as (port, _):
        done = anyio.Event()
        async with anyio.create_task_group() as outer:
            outer.start_soon(check_health, port, done)
            async with anyio.create_task_group() as tg:
                for _ in range(300):
                    tg.start_soon(slowloris, port)
            done.set()
    assert len(closed) == 300
    assert max(closed) < timeout + 1.0, max(closed)  # closed on time, not held
    assert all(parse(a)[0] == 408 for a in answers)
    assert b"header_timeout" in answers[0]
    assert len(health) >= 5 and max(health) < 0.5, health
    timeouts = [r for r in records if "http.request_timeout" in r.getMessage()]
    assert len(timeouts) <= 3  # the first in full, then a count (at shutdown)
    assert any("more times" in r.getMessage() for r in timeouts)


@pytest.mark.anyio
async def test_the_header_timeout_restarts_for_each_request_and_counts_silence(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, header_timeout=0.5, keep_alive_timeout=30) as (port, _):
        # a connection that never sends a byte is closed, unanswered
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            start = time.monotonic()
            assert await read_all(stream) == b""
            assert 0.4 < time.monotonic() - start < 1.5
        # a kept-alive connection: one request, then 1 s idle (keep-alive is 30 s), then
        # half a head: the timer starts again at its first byte
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            buffer = bytearray()
            await stream.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            assert (await read_response(stream, buffer))[0] == 200
            await anyio.sleep(1.0)
            await stream.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")  # still served
            assert (await read_response(stream, buffer))[0] == 200
            await stream.send(b"GET /healthz HTTP/1.1\r\n")
            start = time.monotonic()
            status, headers, _ = parse(await read_all(stream))
            assert (status, headers["connection"]) == (408, "close")
            assert 0.4 < time.monotonic() - start < 1.5


@pytest.mark.anyio
async def test_a_body_that_trickles_is_408_within_the_body_timeout(tmp_path: Path) -> None:
    async with serving(tmp_path, body_timeout=0.5) as (port, module):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b'content-length: 100\r\n\r\n{"name": '
            )
            start = time.monotonic()
            got = b""
            with anyio.fail_after(5):
                while True:  # trickling does not extend it
                    with anyio.move_on_after(0.1):
                        try:
                            got += await stream.receive()
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            break
                        continue
                    try:
                        await stream.send(b" ")
                    except (anyio.BrokenResourceError, OSError):
                        break
            elapsed = time.monotonic() - start
        status, headers, body = parse(got)
        assert (status, headers["connection"]) == (408, "close")
        assert json.loads(body)["error"]["code"] == "http.request_timeout"
        assert 0.4 < elapsed < 1.5
        assert calls(module) == 0
        async with client(port) as http:  # the server is fine
            assert (await http.get("/healthz")).status_code == 200


@pytest.mark.anyio
async def test_past_the_connection_limit_a_new_connection_is_refused_at_once(
    tmp_path: Path,
) -> None:
    limit = 20
    async with serving(tmp_path, max_connections=limit, header_timeout=30) as (port, _):
        held = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(limit)]
        try:
            await anyio.sleep(0.2)  # the server has seen them all
            for _ in range(3):
                start = time.monotonic()
                raw = await exchange(port, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                assert time.monotonic() - start < 0.5
                status, headers, body = parse(raw)
                assert (status, headers["retry-after"], headers["connection"]) == (
                    503,
                    "1",
                    "close",
                )
                assert json.loads(body)["error"]["code"] == "http.too_many_connections"
        finally:
            for stream in held:
                await stream.aclose()
        async with client(port) as http:
            with anyio.fail_after(3):
                while True:  # once they are gone (the server sees it at once)
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.05)


def _refused_later(port: int) -> bytes:
    """A connection past the limit, its answer read 50 ms after the request was sent
    (from another thread: the server's loop has long written it by then)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        time.sleep(0.05)
        out = b""
        while chunk := s.recv(65536):  # a reset raises ConnectionResetError
            out += chunk
        return out


@pytest.mark.anyio
async def test_a_refused_connection_reads_its_503_not_a_reset(tmp_path: Path) -> None:
    """Closing a socket with unread bytes sends a reset, and the client loses the answer:
    the refusal is followed by a FIN and the rest of the request is drained."""
    async with serving(tmp_path, max_connections=2) as (port, _):
        held = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(2)]
        try:
            await anyio.sleep(0.2)
            for _ in range(10):
                raw = await anyio.to_thread.run_sync(_refused_later, port)
                status, headers, body = parse(raw)
                assert (status, headers["connection"]) == (503, "close")
                assert json.loads(body)["error"]["code"] == "http.too_many_connections"
        finally:
            for stream in held:
                await stream.aclose()


def _never_reads(port: int) -> socket.socket:
    """A connection that asks for a large answer and never reads it (a small receive
    buffer: the server's writes stall at once). A client pipelining small requests
    stalls the same way, once the answers fill the buffers."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
    return s


@pytest.mark.anyio
async def test_clients_that_never_read_are_dropped_within_the_write_timeout(
    tmp_path: Path,
) -> None:
    """uvicorn waits on a stalled write without a deadline: clients that never read
    their answers held every slot of max_connections forever (measured: 30 s and
    counting). Now no byte leaving for write_timeout drops them."""
    config = {"max_connections": 3, "write_timeout": "1s", "keep_alive_timeout": "1s"}
    async with serving(tmp_path, **config) as (port, _):
        held = [await anyio.to_thread.run_sync(_never_reads, port) for _ in range(3)]
        try:
            async with client(port) as http:
                await anyio.sleep(0.5)  # the answers are stalled: every slot is taken
                assert (await http.get("/healthz")).status_code == 503
                start = time.monotonic()
                with anyio.fail_after(15):
                    while True:
                        try:
                            if (await http.get("/healthz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await anyio.sleep(0.1)
                # write_timeout, and the time the answers took to stall (generous)
                assert time.monotonic() - start < 6
        finally:
            for s in held:
                s.close()


# -- bounded answers, request ids, broken bodies -------------------------------------------


@pytest.mark.anyio
async def test_a_megabyte_field_gets_a_small_answer_and_a_small_log(
    tmp_path: Path, records: list[logging.LogRecord]
) -> None:
    mb = 1_000_000
    async with serving(tmp_path, max_body_bytes=4 * mb) as (port, module), client(port) as http:
        bodies = [
            {"name": "x" * mb},  # too long for maxLength: 10
            {"k" * mb: 1},  # an unknown key of 1 MB
            {"name": "\x00" + "x" * mb},  # refused by the boundary
            {"\x00" + "k" * mb: 1},  # a key refused by the boundary
            {"tags": ["y" * mb, 1, 2]},
        ]
        for body in bodies:
            raw = json.dumps(body).encode()
            r = await http.post("/echo", content=raw, headers=JSON)
            assert r.status_code == 422
            assert len(r.content) < 4096, (len(r.content), r.text[:300])
        many = {"tags": list(range(500))}  # 500 wrong items: at most 20 named
        r = await http.post("/echo", json=many)
        assert r.status_code == 422 and len(r.json()["error"]["fields"]) == 20
        assert len(r.content) < 8192
        assert calls(module) == 0
    assert sum(len(rec.getMessage()) for rec in records) < 4096


@pytest.mark.anyio
async def test_hostile_request_ids_are_replaced_never_echoed(tmp_path: Path) -> None:
    async with serving(tmp_path) as (port, _):
        for given in (
            b"x" * 129,
            b"<script>alert(1)</script>",
            b"a b",
            b"caf\xe9",
            b"%0d%0aset-cookie:%20x=1",
            b"abc\x7f",
            b"",
        ):
            raw = await exchange(
                port,
                b"GET /nowhere HTTP/1.1\r\nhost: x\r\nx-request-id: " + given + b"\r\n"
                b"connection: close\r\n\r\n",
            )
            status, headers, body = parse(raw)
            rid = headers.get("x-request-id", "")
            assert status in (400, 404), given
            assert len(rid) == 32 and all(c in "0123456789abcdef" for c in rid), given
            assert json.loads(body)["error"]["request_id"] == rid
            if len(given) > 3:
                assert given not in raw, given
        # a NUL or a bare CR in a header is not HTTP: the 400 envelope, a fresh id
        for bad in (b"a\x00b", b"a\rb"):
            raw = await exchange(
                port, b"GET / HTTP/1.1\r\nhost: x\r\nx-request-id: " + bad + b"\r\n\r\n"
            )
            status, headers, body = parse(raw)
            assert status == 400 and json.loads(body)["error"]["code"] == "http.bad_request"
            assert bad not in raw


def broken_bodies() -> list[tuple[bytes, str]]:
    """100 bodies a parser might trip on, each with the Content-Type it is sent with."""
    rng = random.Random(12)
    fixed = [
        b"{", b"}", b"[", b'{"name": ', b'{"name": "x"', b'{"name": "x"}}', b"{'name': 'x'}",
        b'{"name": "x",}', b"[1, 2,]", b'{"a": 01}', b'{"a": .5}', b'{"a": 1.}', b'{"a": -}',
        b'{"a": +1}', b'{"a": 0x10}', b'{"a": 1e}', b'{"a": 1e99999}', b'{"a": -1e99999}',
        b'{"a": NaN}', b'{"a": nan}', b'{"a": undefined}', b'{"a": True}', b'{"a": None}',
        b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b'{"a": "\xed\xa0\x80"}', b'{"a": "\xc3"}',
        b'{"a": "\x00"}', b'{"a": "tab\there"}', b'{"a": "\\x41"}', b'{"a": "\\u12"}',
        b'{"a": "\\ud800\\u"}', b'{"a": 1}{"b": 2}', b"null", b"true", b"1", b'"x"', b"[]",
        b"[" * 100_000, b"{\"a\":" * 50_000, b'{"a": ' + b"9" * 5000 + b"}",
        b'{"name": ' + b'"x",' * 10 + b"}", b"\x00" * 64, b"{" + b" " * 10_000,
    ]  # fmt: skip
    out = [(b, "application/json") for b in fixed]
    valid = json.dumps({"name": "ada", "n": 1, "tags": ["a", "b"], "x": 1.5}).encode()
    while len(out) < 90:  # random mutations of a valid body: flipped, cut, repeated bytes
        b = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256)
        out.append((bytes(b[: rng.randint(1, len(b))]), "application/json"))
    while len(out) < 100:
        noise = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
        out.append((noise, rng.choice(["application/json", "text/plain", "application/x+json"])))
    return out


@pytest.mark.anyio
async def test_a_hundred_broken_bodies_are_never_a_500_nor_a_leak(
    tmp_path: Path, records: list[logging.LogRecord]
) -> None:
    cases = broken_bodies()
    assert len(cases) == 100
    created = 0
    async with serving(tmp_path) as (port, module), client(port) as http:
        for body, kind in cases:
            r = await http.post("/echo", content=body, headers={"content-type": kind})
            assert 400 <= r.status_code < 500 or r.status_code == 201, (body[:60], r.status_code)
            created += r.status_code == 201
            error = r.json().get("error") if r.status_code != 201 else None
            if error is not None:
                assert set(error) <= {"code", "message", "request_id", "fields"}
                assert len(r.content) < 4096
            assert not any(s in shown(r) for s in NO_ADDRESS), (body[:60], r.text)
        assert (await http.get("/healthz")).status_code == 200
    assert calls(module) == created  # only a mutation that happens to be valid input runs
    assert created < 50
    assert not [r for r in records if r.levelno >= logging.ERROR]


# -- failures: classified, logged once per episode --------------------------------------------


@pytest.mark.anyio
async def test_an_unavailable_resource_is_503_with_retry_after_and_logged_once(
    tmp_path: Path, records: list[logging.LogRecord]
) -> None:
    async with serving(tmp_path) as (port, _), client(port) as http:
        for _ in range(30):
            r = await http.get("/db")
            assert (r.status_code, r.headers["retry-after"]) == (503, "2")
            assert r.json()["error"]["code"] == "db.unavailable"
            assert r.json()["error"]["message"] == "'db' is unavailable: it refuses connections"
            assert not any(s in shown(r) for s in NO_ADDRESS), r.text
        for _ in range(10):
            r = await http.get("/boom")
            assert r.status_code == 500
            assert r.json()["error"]["message"] == "internal server error"
            assert "SELECT" not in r.text and "KeyError" not in r.text
        mine = [
            rec
            for rec in records
            if rec.name == "assemble.http" and rec.getMessage().startswith(("GET /db", "GET /boom"))
        ]
        first = [rec for rec in mine if "more times" not in rec.getMessage()]
        assert len(first) == 2, [rec.getMessage() for rec in mine]  # one per kind
        db, boom = first
        assert db.levelno == logging.WARNING and "15432" in db.getMessage()  # the detail
        assert boom.levelno == logging.ERROR and boom.exc_info is not None
        assert boom.exc_info[0] is KeyError
    summaries = [rec.getMessage() for rec in records if "more times" in rec.getMessage()]
    assert any("29 more times with db.unavailable" in s for s in summaries), summaries
    assert any("9 more times with KeyError" in s for s in summaries), summaries


@pytest.mark.anyio
async def test_a_failed_hook_is_answered_as_its_cause_never_a_lookalike(tmp_path: Path) -> None:
    """A hook's classified error reaches the caller as itself (503 db.unavailable with
    Retry-After), not as "hook ... failed"; a third-party exception that carries
    ``http_status`` stays a generic 500 even when wrapped by the hook's error."""
    async with serving(tmp_path) as (port, _), client(port) as http:
        r = await http.post("/signup", json={"kind": "db"})
        assert (r.status_code, r.headers["retry-after"]) == (503, "1")
        assert r.json()["error"]["code"] == "db.unavailable"
        assert "5432" not in shown(r) and "hook" not in r.text
        r = await http.post("/signup", json={"kind": "lookalike"})
        assert r.status_code == 500 and "sk_live" not in r.text and "Stripe" not in r.text
        assert r.json()["error"]["message"] == "internal server error"
        r = await http.post("/signup", json={})
        assert (r.status_code, r.json()) == (200, {"ok": True})


@pytest.mark.anyio
async def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    forwarded = {"x-forwarded-for": "203.0.113.7"}
    async with serving(tmp_path) as (port, _), client(port) as http:  # default: none
        r = await http.get("/who", headers=forwarded)
        assert r.json() == {"client": "127.0.0.1"}
    async with serving(tmp_path, trusted_proxies=["10.0.0.0/8"]) as (port, _), client(port) as http:
        r = await http.get("/who", headers=forwarded)
        assert r.json() == {"client": "127.0.0.1"}  # not one of ours
    async with serving(tmp_path, trusted_proxies=["127.0.0.1"]) as (port, _), client(port) as http:
        r = await http.get("/who", headers=forwarded)
        assert r.json() == {"client": "203.0.113.7"}
        r = await http.get("/who")
        assert r.json() == {"client": "127.0.0.1"}


def test_limits_are_checked_at_validate_time(tmp_path: Path) -> None:
    text = manifest(trusted_proxies=["10.0.0.1", "proxy.internal", "::1/128"], header_timeout=0)
    found = [(c, m) for c, _, _, m in problems(tmp_path, text, edge_tasks=TASKS)]
    prefix = "config of 'http.server' (plugin http): "
    assert found == [
        ("ASM603", prefix + "'proxy.internal' is not an IP address or network"),
        ("ASM603", prefix + "`header_timeout` must be more than 0"),
    ]


# -- shutdown under load: answers, not resets ------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp_path: Path, **config: Any) -> tuple[subprocess.Popen[str], int]:
    """``assemble run`` on the test manifest, on a free port."""
    port = free_port()
    path = write(tmp_path, manifest(**{**config, "port": port}), edge_tasks=TASKS)
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    env.pop("ASSEMBLE_PLUGINS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "assembler", "run", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, port


async def wait_ready(port: int, proc: subprocess.Popen[str]) -> None:
    async with client(port) as http:
        with anyio.fail_after(20):
            while True:
                assert proc.poll() is None, proc.communicate()
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.05)


def stop(proc: subprocess.Popen[str]) -> str:
    """Wait for the process (killed if it hangs); its stderr."""
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.communicate()
    return err


GET = b"GET /items/1 HTTP/1.1\r\nhost: x\r\n\r\n"


@pytest.mark.anyio
async def test_keep_alive_requests_after_sigterm_get_503_and_close_not_a_reset(
    tmp_path: Path,
) -> None:
    """Kept-alive connections that served a request, then SIGTERM: a request sent on
    them 30 ms, 300 ms or 600 ms later (the listener is closed by then) gets a whole
    answer, 503 ``runner.shutting_down`` with ``Connection: close``, then the close."""
    proc, port = start(tmp_path)
    outcomes: list[Any] = []
    try:
        await wait_ready(port, proc)
        streams = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(30)]
        buffers = [bytearray() for _ in streams]
        for stream, buffer in zip(streams, buffers, strict=True):
            await stream.send(GET)
            assert (await read_response(stream, buffer))[0] == 200

        async def late(i: int, delay: float) -> None:
            await anyio.sleep(delay)
            stream = streams[i]
            try:
                await stream.send(GET)
                status, headers, body = await read_response(stream, buffers[i])
                rest = await read_all(stream)  # then the server closes
                outcomes.append((status, headers.get("connection"), json.loads(body), rest))
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
                outcomes.append(type(exc).__name__)

        proc.send_signal(signal.SIGTERM)
        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(late, i, (0.03, 0.3, 0.6)[i % 3])
        for stream in streams:
            await stream.aclose()
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    for outcome in outcomes:
        assert not isinstance(outcome, str), outcomes  # a reset, or closed unanswered
        status, connection, body, rest = outcome
        assert (status, connection, rest) == (503, "close", b"")
        assert body["error"]["code"] == "runner.shutting_down"
    assert len(outcomes) == 30


@pytest.mark.anyio
async def test_connections_waiting_in_the_backlog_at_shutdown_are_answered_not_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections the kernel accepted but the event loop had not (a loop too busy to
    accept: simulated by taking the listener off it) when shutdown begins: closing the
    listener would reset them; they are accepted and answered 503 with
    ``Connection: close`` instead."""
    import asyncio

    from assemble_http import _server

    listeners: list[socket.socket] = []
    real_bind = _server.bind

    def bind(*args: Any, **kwargs: Any) -> socket.socket:
        listeners.append(real_bind(*args, **kwargs))
        return listeners[-1]

    monkeypatch.setattr(_server, "bind", bind)
    compiled = app(tmp_path, manifest(), edge_tasks=TASKS)
    async with runner.run(compiled) as rt:
        port = rt.resource("server").port
        async with client(port) as http:  # the server is accepting (its reader is set)
            assert (await http.get("/healthz")).status_code == 200
        asyncio.get_running_loop().remove_reader(listeners[0].fileno())
        streams = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(10)]
        for stream in streams:
            await stream.send(GET)
    answers: list[Any] = []
    for stream in streams:
        async with stream:
            try:
                status, headers, body = parse(await read_all(stream))
                answers.append((status, headers["connection"], json.loads(body)["error"]["code"]))
            except (anyio.BrokenResourceError, OSError, ValueError) as exc:
                answers.append(type(exc).__name__)
    assert answers == [(503, "close", "runner.shutting_down")] * 10


async def one_per_connection(port: int, outcomes: list[str]) -> None:
    """Call ``/busy`` on a new connection each time, until refused 3 times."""
    refused = 0
    while refused < 3:
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            refused += 1
            outcomes.append("refused")
            await anyio.sleep(0.05)
            continue
        async with stream:
            try:
                await stream.send(b"GET /busy HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                raw = await read_all(stream, 15)
            except (anyio.BrokenResourceError, OSError) as exc:
                outcomes.append(f"new connection: {type(exc).__name__}")
                continue
        outcomes.append(f"{parse(raw)[0]}" if raw else "new connection: closed unanswered")


async def kept_alive(port: int, outcomes: list[str]) -> None:
    """Call ``/busy`` on kept-alive connections (a new one after ``Connection: close``),
    until refused 3 times."""
    refused = 0
    while refused < 3:
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            refused += 1
            outcomes.append("refused")
            await anyio.sleep(0.05)
            continue
        async with stream:
            buffer = bytearray()
            while True:
                try:
                    await stream.send(b"GET /busy HTTP/1.1\r\nhost: x\r\n\r\n")
                    status, headers, _ = await read_response(stream, buffer)
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
                    outcomes.append(f"kept alive: {type(exc).__name__}")
                    break
                closing = headers.get("connection") == "close"
                if status == 503 and not closing:
                    outcomes.append("kept alive: 503 without Connection: close")
                    break
                outcomes.append(str(status))
                if closing:
                    break


@pytest.mark.anyio
async def test_sigterm_under_load_resets_no_request_sent_before_the_listener_closed(
    tmp_path: Path,
) -> None:
    """40 clients, half on new connections, half on kept-alive ones, call a route that
    holds the event loop (so connections wait in the listen backlog); SIGTERM in the
    middle. Every request on a connection the server's kernel had accepted gets a whole
    answer (200, or 503 with Connection: close); later ones are refused at connect; the
    process exits 0."""
    proc, port = start(tmp_path, shutdown_grace="10s")
    outcomes: list[str] = []
    try:
        await wait_ready(port, proc)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(40):
                    tg.start_soon(one_per_connection if i % 2 else kept_alive, port, outcomes)
                await anyio.sleep(1.5)
                proc.send_signal(signal.SIGTERM)
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    bad = [o for o in outcomes if o not in ("200", "503", "refused")]
    assert not bad, (bad, len(outcomes))
    assert outcomes.count("200") > 20 and outcomes.count("refused") == 3 * 40
    assert "Traceback" not in err, err
