"""``tunnel.server`` and ``tunnel.client``: Python to Python over real loopback HTTP.

A server app and a client app, each compiled from its own manifest, run side by side in
one event loop (asyncio: the server is uvicorn). The wire itself is checked with raw
``httpx`` calls, so what a Node Runner client relies on (statuses, codes, headers,
the envelope) is pinned here too; tests/plugins/test_tunnel_node.py runs the real
Runner package against both ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import runner
from assemble_tunnel import RemoteError, TunnelError, TunnelServer, TunnelUnavailable, dumps, loads
from runner.errors import RateLimited, TaskTimeoutError, ValidationError

from ._apps import app, problems

pytestmark = pytest.mark.anyio

TOKEN = "tunnel-test-token-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    """uvicorn (the server) runs on asyncio only."""
    return "asyncio"


SERVER_CODE = """
import datetime as dt
import anyio
import runner

from runner.errors import RunnerError

SEEN = []

class NotFound(RunnerError):
    code = "users.not_found"
    http_status = 404

def add(input):
    at = input["at"]
    return {"sum": input["a"] + input["b"], "later": at + dt.timedelta(seconds=1),
            "was_datetime": isinstance(at, dt.datetime), "tags": {"x"}}

def boom(input):
    raise KeyError("secret-db-password")

def missing(input):
    raise NotFound(f"no user {input['id']}")

def whoami(input):
    request = runner.current_request.use()
    return {"id": request.id, "transport": request.transport,
            "token_seen": request.header("x-runner-token")}

async def slow(input):
    await anyio.sleep(input.get("seconds", 5))
    return {"slept": input.get("seconds", 5)}

def hidden(input):
    return "never"

def echo(input):
    return input

def on_created(emission):
    SEEN.append(("server", emission.data))
    if isinstance(emission.data, dict):
        emission.data["seen_by"] = "server"
"""

SERVER = f"""
assemble: 1
id: srv
resources:
  tunnel:
    use: tunnel.server
    config:
      port: 0
      tokens: [{TOKEN}, rotated-token-abcdefghijkl]
      tasks: ["app.tasks.*", app.whoami, app.slow, app.echo]
      events: [user.created]
      max_body_bytes: 4096
middleware:
  limit_1: {{use: rate_limit, config: {{max_requests: 1, window: 1h}}}}
events:
  user.created: {{}}
hooks:
  record: {{on: user.created, run: srv_code:on_created}}
tasks:
  app.tasks.add:
    run: srv_code:add
    input_schema:
      type: object
      required: [a, b]
      properties: {{a: {{type: integer}}, b: {{type: integer}}}}
  app.tasks.boom: {{run: srv_code:boom}}
  app.tasks.missing: {{run: srv_code:missing}}
  app.tasks.limited: {{run: srv_code:hidden, middleware: [limit_1]}}
  app.whoami: {{run: srv_code:whoami}}
  app.slow: {{run: srv_code:slow}}
  app.hidden: {{run: srv_code:hidden}}
  app.echo: {{run: srv_code:echo}}
"""

CLIENT_CODE = """
LOCAL = []

def on_created(emission):
    LOCAL.append(emission.data)
"""

CLIENT = """
assemble: 1
id: cli
resources:
  remote:
    use: tunnel.client
    config:
      url: ${env.URL}
      token: ${env.TOKEN}
      tasks: ["app.tasks.*", app.whoami, app.slow, app.hidden, app.echo]
      events: [user.created]
      timeout: ${env.TIMEOUT:-30s}
events:
  user.created: {}
hooks:
  local: {on: user.created, run: cli_code:on_created}
tasks:
  app.tasks.add: {remote: true}
  app.tasks.boom: {remote: true}
  app.tasks.missing: {remote: true}
  app.tasks.limited: {remote: true}
  app.whoami: {remote: true}
  app.slow: {remote: true}
  app.hidden: {remote: true}
  app.echo: {remote: true}
"""


@asynccontextmanager
async def server_app(tmp_path: Path, manifest: str = SERVER) -> AsyncIterator[runner.Runtime]:
    (tmp_path / "srv").mkdir(exist_ok=True)
    async with runner.run(app(tmp_path / "srv", manifest, srv_code=SERVER_CODE)) as rt:
        yield rt


@asynccontextmanager
async def client_app(
    tmp_path: Path,
    url: str,
    token: str = TOKEN,
    manifest: str = CLIENT,
    call_timeout: str = "30s",
) -> AsyncIterator[runner.Runtime]:
    # CLIENT's timeout bounds every call: a short one would time out any call during
    # which the loop stalls (a full GC late in a CI run), so only the test of the
    # timeout itself sets one.
    (tmp_path / "cli").mkdir(exist_ok=True)
    env = {"URL": url, "TOKEN": token, "TIMEOUT": call_timeout}
    compiled = app(tmp_path / "cli", manifest, env, cli_code=CLIENT_CODE)
    async with runner.run(compiled) as rt:
        yield rt


@asynccontextmanager
async def pair(
    tmp_path: Path, token: str = TOKEN, call_timeout: str = "30s"
) -> AsyncIterator[tuple[Any, Any]]:
    async with server_app(tmp_path) as srv:
        value: TunnelServer = srv.resource("tunnel")
        async with client_app(tmp_path, value.url, token, call_timeout=call_timeout) as cli:
            yield srv, cli


def url_of(rt: runner.Runtime) -> str:
    value: TunnelServer = rt.resource("tunnel")
    return value.url


# -- Python client -> Python server ---------------------------------------------------


async def test_a_remote_task_runs_on_the_server_with_rich_values(tmp_path: Path) -> None:
    async with pair(tmp_path) as (_, cli):
        at = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
        result = await cli.run_task("app.tasks.add", {"a": 1, "b": 2, "at": at})
    assert result == {
        "sum": 3,
        "later": at + dt.timedelta(seconds=1),
        "was_datetime": True,
        "tags": {"x"},
    }


async def test_remote_typed_errors_come_back_typed(tmp_path: Path) -> None:
    async with pair(tmp_path) as (_, cli):
        with pytest.raises(ValidationError) as invalid:
            await cli.run_task("app.tasks.add", {"a": "one", "b": 2})
        assert invalid.value.field == "a"
        assert invalid.value.owner == "app.tasks.add"
        await cli.run_task("app.tasks.limited", {})
        with pytest.raises(RateLimited) as limited:
            await cli.run_task("app.tasks.limited", {})
        assert 0 < limited.value.retry_after <= 3600
        with pytest.raises(RemoteError) as missing:
            await cli.run_task("app.tasks.missing", {"id": 7})
        assert (missing.value.code, missing.value.http_status) == ("users.not_found", 404)
        assert missing.value.message == "no user 7"


async def test_an_untyped_remote_failure_says_nothing_and_is_logged_on_the_server(
    tmp_path: Path, plugin_records: list[logging.LogRecord]
) -> None:
    async with pair(tmp_path) as (_, cli):
        with (
            pytest.raises(RemoteError) as failed,
            runner.current_request.provide(runner.Request("req-boom")),
        ):
            await cli.run_task("app.tasks.boom")
    assert failed.value.code == "INTERNAL_ERROR"
    assert failed.value.message == "Internal Error"
    assert "secret-db-password" not in str(failed.value)
    (record,) = [r for r in plugin_records if r.name == "assemble.tunnel"]
    assert record.levelno == logging.ERROR
    assert getattr(record, "request_id", None) == "req-boom"
    assert "app.tasks.boom" in record.getMessage() and "req-boom" in record.getMessage()
    assert record.exc_info is not None and "secret-db-password" in str(record.exc_info[1])


async def test_the_request_reaches_the_task_without_the_token(tmp_path: Path) -> None:
    async with pair(tmp_path) as (_, cli):
        with runner.current_request.provide(runner.Request("req-42.a:b")):
            seen = await cli.run_task("app.whoami")
    assert seen == {"id": "req-42.a:b", "transport": "tunnel", "token_seen": None}


async def test_refusals_are_tunnel_errors_with_the_remote_code(tmp_path: Path) -> None:
    async with server_app(tmp_path) as srv:
        async with client_app(tmp_path, url_of(srv), token="wrong-token-0123456789") as cli:
            with pytest.raises(TunnelError) as wrong:
                await cli.run_task("app.whoami")
        assert wrong.value.remote_code == "UNAUTHORIZED"
        assert "token" in wrong.value.hint
        async with client_app(tmp_path, url_of(srv)) as cli:
            with pytest.raises(TunnelError) as hidden:
                await cli.run_task("app.hidden")
        assert hidden.value.remote_code == "FORBIDDEN"
        assert "app.hidden" in str(hidden.value)
        async with client_app(tmp_path, url_of(srv), token="rotated-token-abcdefghijkl") as cli:
            assert (await cli.run_task("app.whoami"))["transport"] == "tunnel"


async def test_a_remote_call_past_the_timeout_is_a_timeout_error(tmp_path: Path) -> None:
    async with pair(tmp_path, call_timeout="300ms") as (_, cli):
        start = anyio.current_time()
        with pytest.raises(TaskTimeoutError) as late:
            await cli.run_task("app.slow", {"seconds": 5})
        assert anyio.current_time() - start < 3  # 300 ms timeout, generous margin
        assert late.value.http_status == 504


async def test_an_unreachable_server_is_unavailable_and_the_log_says_where(
    tmp_path: Path, plugin_records: list[logging.LogRecord]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nobody listens
    async with client_app(tmp_path, f"http://127.0.0.1:{port}/__runner") as cli:
        with (
            pytest.raises(TunnelUnavailable) as down,
            runner.current_request.provide(runner.Request("req-down")),
        ):
            await cli.run_task("app.whoami")
    assert down.value.http_status == 503
    # the error may reach an outside caller: it names no internal address
    assert str(down.value).startswith(
        "remote task 'app.whoami': the tunnel server cannot be reached"
    )
    assert "127.0.0.1" not in str(down.value)
    (record,) = [r for r in plugin_records if r.name == "assemble.tunnel"]
    assert f"127.0.0.1:{port}" in record.getMessage() and "ConnectError" in record.getMessage()
    assert getattr(record, "request_id", None) == "req-down"


async def test_events_are_mirrored_after_local_hooks(tmp_path: Path) -> None:
    async with pair(tmp_path) as (_, cli):
        await cli.emit("user.created", {"id": 1})
        import cli_code  # type: ignore[import-not-found]
        import srv_code  # type: ignore[import-not-found]

        assert cli_code.LOCAL == [{"id": 1}]
        assert srv_code.SEEN == [("server", {"id": 1, "seen_by": "server"})]


# -- retries: only for idempotent tasks -----------------------------------------------


@asynccontextmanager
async def flaky_server(
    fail_first: int, error: dict[str, Any] | None = None
) -> AsyncIterator[tuple[str, list[str]]]:
    """A raw HTTP server: 503 with ``error`` for the first ``fail_first`` requests, then ok."""
    calls: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed its connection
                writer.close()
                return
            line = head.split(b"\r\n")[0].decode()
            length = 0
            for h in head.split(b"\r\n")[1:]:
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":")[1])
            await reader.readexactly(length)
            calls.append(line)
            if len(calls) <= fail_first:
                status, body = (
                    "503 Service Unavailable",
                    dumps({"ok": False, "error": error or {"code": "X", "message": "busy"}}),
                )
            else:
                status, body = "200 OK", dumps({"ok": True, "result": len(calls)})
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(data)}\r\n\r\n".encode()
                + data
            )
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/__runner", calls
    finally:
        server.close()


FLAKY_CLIENT = """
assemble: 1
id: flaky
resources:
  remote:
    use: tunnel.client
    config: {url: "${env.URL}", token: t, tasks: [safe, unsafe], retries: 2}
tasks:
  safe: {remote: true, idempotent: true}
  unsafe: {remote: true}
"""


async def test_only_idempotent_tasks_are_retried(tmp_path: Path) -> None:
    async with flaky_server(fail_first=2) as (url, calls):
        async with client_app(tmp_path, url, manifest=FLAKY_CLIENT) as cli:
            assert await cli.run_task("safe") == 3  # two 503s, then the third attempt
        assert calls == ["POST /__runner/task/safe HTTP/1.1"] * 3
    async with flaky_server(fail_first=1) as (url, calls):
        async with client_app(tmp_path, url, manifest=FLAKY_CLIENT) as cli:
            with pytest.raises(TunnelError) as busy:
                await cli.run_task("unsafe")
        assert busy.value.remote_code == "X"
        assert calls == ["POST /__runner/task/unsafe HTTP/1.1"]  # never sent twice


# -- the wire, as a Node client sees it -----------------------------------------------


async def post(url: str, body: bytes | str, token: str = TOKEN, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            url,
            content=body.encode() if isinstance(body, str) else body,
            headers={"x-runner-token": token, "content-type": "application/json", **headers},
        )


async def test_wire_statuses_codes_and_headers(tmp_path: Path) -> None:
    async with server_app(tmp_path) as srv:
        base = url_of(srv)
        ok = await post(
            f"{base}/task/app.tasks.add",
            '{"input": {"a": 1, "b": 2, "at": '
            '{"__type": "Date", "value": "2024-01-01T00:00:00.000Z"}}}',
        )
        assert ok.status_code == 200
        assert ok.json()["result"]["later"] == {
            "__type": "Date",
            "value": "2024-01-01T00:00:01.000Z",
        }
        assert ok.headers["content-type"] == "application/json; charset=utf-8"
        assert ok.headers["x-content-type-options"] == "nosniff"
        assert ok.headers["x-frame-options"] == "DENY"
        assert len(ok.headers["x-runner-request-id"]) == 36  # made: a UUID
        echoed = await post(f"{base}/task/app.whoami", "", **{"x-runner-request-id": "abc.1:2-3"})
        assert echoed.headers["x-runner-request-id"] == "abc.1:2-3"
        assert echoed.json()["result"]["id"] == "abc.1:2-3"
        bad_id = await post(f"{base}/task/app.whoami", "", **{"x-runner-request-id": "a b"})
        assert bad_id.headers["x-runner-request-id"] != "a b"

        # a body without `input` is the input itself (Runner's rule), so is a bare value
        bare = await post(f"{base}/task/app.echo", '{"a": 2}')
        assert bare.json() == {"ok": True, "result": {"a": 2}}
        assert (await post(f"{base}/task/app.echo", "5")).json() == {"ok": True, "result": 5}
        empty = await post(f"{base}/task/app.echo", "")
        assert empty.json() == {"ok": True, "result": None}

        def error(r: httpx.Response) -> tuple[int, dict[str, Any]]:
            return r.status_code, r.json()["error"]

        assert error(await post(f"{base}/task/app.hidden", "{}")) == (
            403,
            {"message": "Task app.hidden not exposed", "code": "FORBIDDEN"},
        )
        assert error(await post(f"{base}/task/app.whoami", "{}", token="nope")) == (
            401,
            {"message": "Unauthorized", "code": "UNAUTHORIZED"},
        )
        assert error(await post(f"{base}/task/app.whoami", "{not json")) == (
            400,
            {"message": "Invalid JSON body", "code": "INVALID_JSON"},
        )
        assert error(await post(f"{base}/task/app.whoami", "[" + " " * 5000 + "]")) == (
            413,
            {"message": "Payload too large", "code": "PAYLOAD_TOO_LARGE"},
        )
        assert error(await post(f"{base}/nowhere", "{}")) == (
            404,
            {"message": "Not Found", "code": "NOT_FOUND"},
        )
        typed_status, typed = error(
            await post(f"{base}/task/app.tasks.missing", '{"input": {"id": 3}}')
        )
        assert typed_status == 404
        assert typed == {
            "code": "users.not_found",
            "message": "no user 3",
            "id": "users.not_found",
            "data": {},
            "httpCode": 404,
        }
        async with httpx.AsyncClient() as http:
            get = await http.get(f"{base}/task/app.whoami", headers={"x-runner-token": TOKEN})
            assert error(get) == (
                405,
                {"message": "Method Not Allowed", "code": "METHOD_NOT_ALLOWED"},
            )
            found = await http.get(f"{base}/discovery", headers={"x-runner-token": TOKEN})
            assert found.json() == {
                "ok": True,
                "result": {
                    "allowList": {
                        "enabled": True,
                        "tasks": [
                            "app.echo",
                            "app.slow",
                            "app.tasks.add",
                            "app.tasks.boom",
                            "app.tasks.limited",
                            "app.tasks.missing",
                            "app.whoami",
                        ],
                        "events": ["user.created"],
                    }
                },
            }
            refused = await http.get(f"{base}/discovery")
            assert refused.status_code == 401


async def test_an_event_can_return_the_payload_the_hooks_left(tmp_path: Path) -> None:
    async with server_app(tmp_path) as srv:
        r = await post(
            f"{url_of(srv)}/event/user.created", '{"payload": {"id": 9}, "returnPayload": true}'
        )
    assert r.json() == {"ok": True, "result": {"id": 9, "seen_by": "server"}}


async def test_a_server_without_tokens_refuses_every_call(
    tmp_path: Path, plugin_records: list[logging.LogRecord]
) -> None:
    manifest = SERVER.replace(f"tokens: [{TOKEN}, rotated-token-abcdefghijkl]", "tokens: []")
    async with server_app(tmp_path, manifest) as srv:
        r = await post(f"{url_of(srv)}/task/app.whoami", "{}")
    assert (r.status_code, r.json()["error"]["code"]) == (500, "AUTH_NOT_CONFIGURED")
    assert any("every call is refused" in rec.getMessage() for rec in plugin_records)


async def test_a_call_in_flight_finishes_on_shutdown(tmp_path: Path) -> None:
    answers: list[httpx.Response] = []

    async def call(base: str) -> None:
        answers.append(await post(f"{base}/task/app.slow", '{"input": {"seconds": 0.5}}'))

    async with anyio.create_task_group() as tg:
        async with server_app(tmp_path) as srv:
            tg.start_soon(call, url_of(srv))
            # the call is accepted before shutdown begins: waited for, as a fixed sleep
            # may be too short for a loaded machine to connect and send it
            with anyio.fail_after(10):
                while srv.in_flight == 0:
                    await anyio.sleep(0.01)
        # the app is disposed: shutdown began with the call in flight and waited for it
        assert [a.json() for a in answers] == [{"ok": True, "result": {"slept": 0.5}}]


# -- validation ---------------------------------------------------------------------


def test_validate_names_unknown_ids_double_routes_and_unrouted_remote_tasks(tmp_path: Path) -> None:
    manifest = """
    assemble: 1
    id: v
    resources:
      a:
        use: tunnel.client
        config: {url: "http://127.0.0.1:1/__runner", token: t, tasks: [x, "y*", nope]}
      b:
        use: tunnel.client
        config: {url: "http://127.0.0.1:2/__runner", token: t, tasks: [x], events: [ghost]}
    tasks:
      x: {remote: true}
      y1: {remote: true}
      z: {remote: true}
    """
    found = problems(tmp_path, manifest)
    codes = sorted((code, line) for code, line, _, _ in found)
    assert codes == [
        ("tunnel/not-routed", 13),
        ("tunnel/routed-twice", 9),
        ("tunnel/unknown-id", 6),
        ("tunnel/unknown-id", 9),
    ]
    messages = " | ".join(m for *_, m in found)
    assert "lists task 'nope', which is not declared" in messages
    assert "task 'x' is routed by both 'a' and 'b'" in messages
    assert "task 'z' is `remote: true` but no tunnel routes it" in messages


def test_loads_dumps_are_exported() -> None:
    assert loads(dumps({"when": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)})) == {
        "when": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    }


async def test_a_body_that_never_ends_gets_413_and_a_closed_connection(tmp_path: Path) -> None:
    async with server_app(tmp_path) as srv:
        value: TunnelServer = srv.resource("tunnel")
        received = b""
        async with await anyio.connect_tcp("127.0.0.1", value.port) as stream:
            chunk = b"x" * 5000  # over the 4096-byte limit, then nothing more
            await stream.send(
                b"POST /__runner/task/app.echo HTTP/1.1\r\nhost: x\r\n"
                + f"x-runner-token: {TOKEN}\r\ntransfer-encoding: chunked\r\n\r\n".encode()
                + f"{len(chunk):x}\r\n".encode()
                + chunk
                + b"\r\n"
            )
            with anyio.fail_after(10):  # the server stops waiting after 2 s and closes
                while True:
                    try:
                        received += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.lower().startswith(b"http/1.1 413") and b"connection: close" in head.lower()
    assert loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"


# -- the example pair under the CLI ---------------------------------------------------


ROOT = Path(__file__).resolve().parents[2]


def test_the_tunnel_example_end_to_end_under_the_cli(tmp_path: Path) -> None:
    """``assemble run`` the billing server, ``assemble call`` the shop's checkout through it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TUNNEL_PORT": str(port), "TUNNEL_TOKEN": "example-token-0123456789"}
    env.pop("ASSEMBLE_PLUGINS", None)
    cli = [sys.executable, "-m", "assembler"]
    server = subprocess.Popen(
        [*cli, "run", str(ROOT / "manifests/tunnel/server.yaml")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, server.communicate()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not listen"
                time.sleep(0.05)

        def call(card: str, total: float, token: str | None = None) -> Any:
            return subprocess.run(
                [
                    *cli,
                    "call",
                    str(ROOT / "manifests/tunnel/client.yaml"),
                    "checkout",
                    "--input",
                    json.dumps({"order": "A-1", "total": total, "card": card}),
                ],
                env={**env, "TUNNEL_TOKEN": token} if token else env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        paid = call("4242424242424242", 30)
        assert paid.returncode == 0, paid.stderr
        receipt = json.loads(paid.stdout)
        assert receipt["order"] == "A-1" and receipt["paid"] == 30
        assert dt.datetime.fromisoformat(receipt["paid_at"]).tzinfo == dt.UTC
        declined = call("4000000000000002", 30)
        assert declined.returncode == 1
        assert "error[billing.card_declined]: card ending 0002 was declined" in declined.stderr
        invalid = call("4242424242424242", -3)
        assert invalid.returncode == 1
        assert "error[runner.validation]: invalid input for 'billing.charge': amount:" in (
            invalid.stderr
        )
        refused = call("4242424242424242", 30, token="wrong-token-0123456789")
        assert refused.returncode == 1
        assert "error[tunnel.failed]" in refused.stderr and "401 UNAUTHORIZED" in refused.stderr
        assert "Traceback" not in paid.stderr + declined.stderr + invalid.stderr + refused.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=20)
    assert server.returncode == 0, err


async def test_a_draining_servers_typed_503_is_retried_for_idempotent_tasks(
    tmp_path: Path,
) -> None:
    draining = {
        "code": "runner.shutting_down",
        "message": "shutting down",
        "id": "runner.shutting_down",
        "data": {},
        "httpCode": 503,
    }
    async with flaky_server(fail_first=1, error=draining) as (url, calls):
        async with client_app(tmp_path, url, manifest=FLAKY_CLIENT) as cli:
            assert await cli.run_task("safe") == 2
        assert calls == ["POST /__runner/task/safe HTTP/1.1"] * 2
    async with flaky_server(fail_first=1, error=draining) as (url, calls):
        async with client_app(tmp_path, url, manifest=FLAKY_CLIENT) as cli:
            with pytest.raises(RemoteError) as refused:
                await cli.run_task("unsafe")
        assert (refused.value.code, refused.value.http_status) == ("runner.shutting_down", 503)
        assert calls == ["POST /__runner/task/unsafe HTTP/1.1"]


async def test_a_tunnel_call_past_the_grace_gets_a_typed_503_and_is_reported(
    tmp_path: Path, plugin_records: list[logging.LogRecord]
) -> None:
    manifest = SERVER.replace(
        "max_body_bytes: 4096", "max_body_bytes: 4096\n      shutdown_grace: 1s"
    )
    answers: list[httpx.Response] = []

    async def call(base: str) -> None:
        answers.append(
            await post(
                f"{base}/task/app.slow",
                '{"input": {"seconds": 30}}',
                **{"x-runner-request-id": "req-late"},
            )
        )

    async with anyio.create_task_group() as tg, server_app(tmp_path, manifest) as srv:
        tg.start_soon(call, url_of(srv))
        with anyio.fail_after(10):  # accepted before shutdown begins (not a fixed sleep)
            while srv.in_flight == 0:
                await anyio.sleep(0.01)
    (answer,) = answers
    assert answer.status_code == 503
    assert answer.json() == {
        "ok": False,
        "error": {
            "code": "runner.shutting_down",
            "message": "the request was cancelled: still running when shutdown_grace (1s) ran out",
            "id": "runner.shutting_down",
            "data": {},
            "httpCode": 503,
        },
    }
    (record,) = [r for r in plugin_records if "cancelled" in r.getMessage()]
    assert record.name == "assemble.tunnel"
    assert record.getMessage().startswith("tunnel call of task 'app.slow' (request req-late)")


RELAY = f"""
assemble: 1
id: relay
resources:
  tunnel:
    use: tunnel.server
    config: {{port: 0, tokens: [{TOKEN}], events: [a]}}
  onward:
    use: tunnel.client
    config: {{url: "${{env.URL}}", token: {TOKEN}, events: [a, b]}}
events:
  a: {{}}
  b: {{}}
hooks:
  on_a: {{on: a, run: relay_code:on_a, dependencies: {{b: b}}}}
"""

RELAY_CODE = """
async def on_a(emission, b):
    await b({"from": "hook of a"})
"""

SINK = f"""
assemble: 1
id: sink
resources:
  tunnel:
    use: tunnel.server
    config: {{port: 0, tokens: [{TOKEN}], events: [a, b]}}
events:
  a: {{}}
  b: {{}}
hooks:
  got_a: {{on: a, run: sink_code:got}}
  got_b: {{on: b, run: sink_code:got}}
"""

SINK_CODE = """
GOT = []

def got(emission):
    GOT.append((emission.id, emission.data))
"""


async def test_an_event_that_came_through_a_tunnel_is_not_sent_on_but_its_hooks_events_are(
    tmp_path: Path,
) -> None:
    (tmp_path / "sink").mkdir()
    (tmp_path / "relay").mkdir()
    async with runner.run(app(tmp_path / "sink", SINK, sink_code=SINK_CODE)) as sink:
        compiled = app(tmp_path / "relay", RELAY, {"URL": url_of(sink)}, relay_code=RELAY_CODE)
        async with runner.run(compiled) as relay:
            r = await post(f"{url_of(relay)}/event/a", '{"payload": {"n": 1}}')
            assert r.json() == {"ok": True}
            import sink_code  # type: ignore[import-not-found]

            # `a` came in through the relay's server: not sent on (no loops); the `b`
            # its hook emitted is mirrored as usual
            assert sink_code.GOT == [("b", {"from": "hook of a"})]
            await relay.emit("a", {"n": 2})  # a local emit of `a` is mirrored
            # the hook (and the `b` it emits) first, then `a` goes out
            assert sink_code.GOT[-2:] == [("b", {"from": "hook of a"}), ("a", {"n": 2})]


WARM = """
assemble: 1
id: warm
resources:
  remote:
    use: tunnel.client
    config: {url: "${env.URL}", token: "${env.TOKEN}", tasks: [app.echo]}
  greeting:
    init: warm_code:greeting
    dependencies: {echo: app.echo}
tasks:
  app.echo: {remote: true}
"""

WARM_CODE = """
async def greeting(config, echo):
    return await echo({"hello": "from init"})
"""


async def test_a_resource_may_call_a_remote_task_in_its_init(tmp_path: Path) -> None:
    async with server_app(tmp_path) as srv:
        (tmp_path / "warm").mkdir()
        env = {"URL": url_of(srv), "TOKEN": TOKEN}
        async with runner.run(app(tmp_path / "warm", WARM, env, warm_code=WARM_CODE)) as rt:
            assert rt.resource("greeting") == {"hello": "from init"}


async def test_what_no_store_keeps_is_refused_before_the_task_runs(tmp_path: Path) -> None:
    """The boundary rule (DESIGN §12): a lone surrogate (UTF-8 cannot hold one: it comes
    as `\ud800`), a NUL, a NaN or infinity (Runner's `NonFiniteNumber`, or `1e400`) and
    an integer past 64 bits are refused with 422, naming the field."""
    from runner.errors import ValidationError

    async with pair(tmp_path) as (_, cli):
        with pytest.raises(ValidationError) as info:
            await cli.run_task("app.echo", {"s": "\ud800x"})
        assert [e.field for e in info.value.errors] == ["s"]
    async with server_app(tmp_path) as srv:
        for body, field in [
            ('{"input": "\\ud800x"}', "(root)"),
            ('{"input": {"name": "a\\u0000b"}}', "name"),
            ('{"input": {"amount": {"__type": "NonFiniteNumber", "value": "NaN"}}}', "amount"),
            ('{"input": {"amount": {"__type": "NonFiniteNumber", "value": "Infinity"}}}', "amount"),
            ('{"input": {"amount": 1e400}}', "amount"),
            ('{"input": {"id": {"__type": "BigInt", "value": "9223372036854775808"}}}', "id"),
        ]:
            r = await post(f"{url_of(srv)}/task/app.echo", body)
            assert r.status_code == 422, body
            error = loads(r.content)["error"]
            assert error["code"] == "runner.validation"
            assert [e["path"] for e in error["data"]["errors"]] == [
                [] if field == "(root)" else [field]
            ]


def test_tokens_must_be_printable_ascii(tmp_path: Path) -> None:
    manifest = """
    assemble: 1
    id: t
    resources:
      s: {use: tunnel.server, config: {port: 0, tokens: ["pässwort-0123456789abc"]}}
      c: {use: tunnel.client, config: {url: "http://x/__runner", token: "a b"}}
    """
    found = problems(tmp_path, manifest)
    assert [(code, line) for code, line, _, _ in found] == [("ASM603", 4), ("ASM603", 5)]


async def test_a_call_after_the_client_closed_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    async with server_app(tmp_path) as srv:
        async with client_app(tmp_path, url_of(srv)) as cli:
            client = cli.resource("remote")
        with pytest.raises(TunnelUnavailable, match="the tunnel client is closed"):
            await client.task("app.whoami")
