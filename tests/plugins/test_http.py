"""``http.server`` and ``http.route``: real loopback HTTP through a compiled manifest.

uvicorn and Starlette run on asyncio only, so this module runs its async tests on
asyncio (one test shows that trio fails clearly). Servers listen on ``port: 0`` and the
tests read the bound port from the resource's value.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import pytest

import runner
from assemble_http import HttpServer, HttpServerError

from ._apps import app, problems

ROOT = Path(__file__).resolve().parents[2]
SECRET = "http-test-secret-" + "k" * 32


@pytest.fixture
def anyio_backend() -> str:
    """uvicorn and Starlette are asyncio-only."""
    return "asyncio"


def token(**claims: Any) -> str:
    base = {"sub": "ada", "exp": int(time.time()) + 300, "roles": ["user"], **claims}
    return jwt.encode(base, SECRET, algorithm="HS256")


TASKS = """
import anyio
import runner

def get_user(input):
    return {"id": input["id"], "q": input.get("q")}

def echo(input):
    return input

def whoami(input, auth):
    return {"sub": auth.use().subject}

def request_info(input):
    request = runner.current_request.use()
    return {"id": request.id, "transport": request.transport,
            "custom": request.header("X-Custom")}

def boom(input):
    raise KeyError("secret-db-password-in-message")

async def slow(input):
    await anyio.sleep(input.get("seconds", 1))
    return {"done": True}

def bad_result(input):
    return {"secret_internal_field": 1}

def nothing(input):
    return None
"""

MANIFEST = f"""
assemble: 1
id: api
resources:
  server:
    use: http.server
    config: {{port: 0, max_body_bytes: 20000}}
middleware:
  jwt: {{use: auth.jwt, config: {{secret: "{SECRET}", algorithms: [HS256]}}}}
  admins: {{use: auth.rbac, config: {{allowed_roles: [admin]}}}}
tasks:
  get_user:
    run: t:get_user
    tags: {{http.route: {{method: GET, path: "/users/{{id}}"}}}}
    input_schema:
      type: object
      required: [id]
      properties: {{id: {{type: integer}}, q: {{type: string}}}}
  echo:
    run: t:echo
    tags: {{http.route: {{method: POST, path: "/things/{{id}}", status: 201}}}}
    input_schema:
      type: object
      required: [name]
      properties: {{name: {{type: string}}, id: {{type: string}}, n: {{type: integer}}}}
  whoami:
    run: t:whoami
    dependencies: {{auth: auth}}
    middleware: [jwt]
    tags: {{http.route: {{method: GET, path: /me}}}}
  admin_only:
    run: t:echo
    middleware: [jwt, admins]
    tags: {{http.route: {{method: DELETE, path: "/things/{{id}}"}}}}
  request_info:
    run: t:request_info
    tags: {{http.route: {{method: GET, path: /request}}}}
  boom:
    run: t:boom
    tags: {{http.route: {{method: GET, path: /boom}}}}
  limited:
    run: t:echo
    middleware: [{{use: rate_limit, config: {{max_requests: 1, window: 90500ms}}}}]
    tags: {{http.route: {{method: GET, path: /limited}}}}
  timed:
    run: t:slow
    middleware: [{{use: timeout, config: {{after: 50ms}}}}]
    tags: {{http.route: {{method: GET, path: /timed}}}}
  nothing:
    run: t:nothing
    tags: {{http.route: {{method: PUT, path: /nothing, status: 204}}}}
  bad_result:
    run: t:bad_result
    result_schema: {{type: object, required: [id], additionalProperties: false}}
    tags: {{http.route: {{method: GET, path: /bad-result}}}}
"""


@asynccontextmanager
async def serving(tmp_path: Path, manifest: str = MANIFEST) -> AsyncIterator[httpx.AsyncClient]:
    """The app running, and a client on its server's base URL."""
    compiled = app(tmp_path, manifest, t=TASKS)
    async with runner.run(compiled) as rt:
        server = rt.resource("server")
        assert isinstance(server, HttpServer) and server.port > 0
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            yield client


def envelope(response: httpx.Response) -> dict[str, Any]:
    """The error body, after checking its shape and that it carries the request id."""
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert response.headers["content-type"] == "application/json"
    return {k: v for k, v in error.items() if k != "request_id"}


# -- success ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_route_runs_its_task_with_path_query_and_body_merged(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        r = await client.get("/users/42", params={"q": "x"})
        assert (r.status_code, r.json()) == (200, {"id": 42, "q": "x"})  # "42" → integer
        # the route's status; the path parameter wins over a body key of the same name
        r = await client.post("/things/7?n=3", json={"name": "box", "id": "spoofed", "n": 1})
        assert (r.status_code, r.json()) == (201, {"name": "box", "id": "7", "n": 3})
        r = await client.put("/nothing")
        assert (r.status_code, r.content) == (204, b"")


@pytest.mark.anyio
async def test_url_integers_are_exact_up_to_64_bits_and_422_past_them(tmp_path: Path) -> None:
    """A URL integer of 19 digits is an integer, exactly (schemathesis found long ones
    left as text, so a valid request got a 422); past the signed 64-bit range the
    boundary rule refuses it (no column holds it) and past Python's 4300-digit limit it
    stays text: each a 422 naming the field, never a 500."""
    top = 2**63 - 1
    async with serving(tmp_path) as client:
        r = await client.get(f"/users/{top}")
        assert (r.status_code, r.json()) == (200, {"id": top, "q": None})
        r = await client.post(f"/things/7?n={-top - 1}", json={"name": "box"})
        assert (r.status_code, r.json()) == (201, {"name": "box", "id": "7", "n": -top - 1})
        for big in (str(top + 1), str(-top - 2), "1629864310976981327212760268800" + "9" * 20):
            r = await client.post(f"/things/7?n={big}", json={"name": "box"})
            assert r.status_code == 422, big
            assert r.json()["error"]["fields"] == [
                {
                    "field": "n",
                    "message": "is an integer outside the 64-bit range (-2**63 .. 2**63 - 1)",
                }
            ]
        r = await client.get(f"/users/{top + 1}")
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "id"
        r = await client.post(f"/things/7?n={'1' * 5000}", json={"name": "box"})
        assert r.status_code == 422
        assert [f["field"] for f in r.json()["error"]["fields"]] == ["n"]


@pytest.mark.anyio
async def test_health_and_readiness(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        r = await client.get("/healthz")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        r = await client.get("/readyz")
        assert (r.status_code, r.json()) == (200, {"status": "ready"})


@pytest.mark.anyio
async def test_readyz_is_503_while_the_app_is_not_running(tmp_path: Path) -> None:
    from assemble_http._server import build_app

    # a real runtime that has not started: state "starting"
    rt = runner.Runtime(runner.plan(runner.Store.build(app(tmp_path, MANIFEST, t=TASKS))))
    transport = httpx.ASGITransport(app=build_app(rt, {}))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        r = await client.get("/readyz")
    assert (r.status_code, r.json()) == (503, {"status": "starting"})


# -- request ids --------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_request_id_is_echoed_or_made_and_reaches_the_task(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        r = await client.get("/request", headers={"X-Request-ID": "abc-123", "X-Custom": "v"})
        assert r.headers["x-request-id"] == "abc-123"
        assert r.json() == {"id": "abc-123", "transport": "http", "custom": "v"}
        made = []
        for bad in (None, "x" * 129, "has space", "semi;colon"):
            headers = {"X-Request-ID": bad} if bad is not None else {}
            r = await client.get("/request", headers=headers)
            rid = r.headers["x-request-id"]
            assert rid != bad and len(rid) == 32 and r.json()["id"] == rid
            made.append(rid)
        assert len(set(made)) == 4
        # error responses and unknown paths carry it too
        r = await client.get("/nowhere", headers={"X-Request-ID": "req-404"})
        assert r.json()["error"]["request_id"] == "req-404"


# -- errors, each status with its exact body -----------------------------------------


@pytest.mark.anyio
async def test_bad_bodies_are_400(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        post = client.post
        cases = {
            b'{"name": ': "the body is not valid JSON: Expecting value",
            b'{"name": "x", "n": NaN}': "the body is not valid JSON: NaN is not allowed",
            b'{"n": Infinity}': "the body is not valid JSON: Infinity is not allowed",
            b"[" * 65 + b"]" * 65: "the body is nested deeper than 64 levels",
            b"[" * 5000 + b"]" * 5000: "the body is nested deeper than 64 levels",
            b"[1, 2]": "the body must be a JSON object, not an array",
            b"\xff\xfe{": "the body is not valid JSON: not UTF-8 text",
            b'{"n": 1e999}': "the body is not valid JSON: 1e999 is out of range",
            b'{"n": -1e400}': "the body is not valid JSON: -1e400 is out of range",
            b'{"n": ' + b"9" * 5000 + b"}": "the body is not valid JSON: a value is out of range",
        }
        for raw, message in cases.items():
            r = await post("/things/1", content=raw, headers={"content-type": "application/json"})
            assert r.status_code == 400, raw
            assert envelope(r) == {"code": "http.bad_json", "message": message}, raw
        deep = b"[" * 64 + b"{}" + b"]" * 64  # depth 65
        r = await post("/things/1", content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = await post("/things/1", json={"name": [[[[[[[[["deep but fine"]]]]]]]]]})
        assert r.status_code == 422  # parsed; the schema then refuses the list


@pytest.mark.anyio
async def test_a_request_that_is_not_valid_http_gets_the_json_envelope(tmp_path: Path) -> None:
    """uvicorn refuses it before the app sees it; the 400 is still JSON with a request id
    (schemathesis found uvicorn's text/plain answer to a garbage Content-Length)."""
    async with serving(tmp_path) as client:
        url = client.base_url
        for bad in (b"content-length: o4$;D~\r\n", b"e9;: x\r\n"):
            request = b"GET /me HTTP/1.1\r\nhost: x\r\n" + bad + b"\r\n"
            async with await anyio.connect_tcp(str(url.host), int(url.port or 80)) as stream:
                await stream.send(request)
                raw = b""
                with anyio.fail_after(5):
                    try:
                        while chunk := await stream.receive():
                            raw += chunk
                    except anyio.EndOfStream:
                        pass
            head, _, body = raw.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            assert lines[0] == "HTTP/1.1 400 Bad Request", raw
            headers = dict(line.lower().split(": ", 1) for line in lines[1:])
            assert headers["content-type"] == "application/json"
            assert int(headers["content-length"]) == len(body)
            assert json.loads(body) == {
                "error": {
                    "code": "http.bad_request",
                    "message": "the request is not valid HTTP/1.1",
                    "request_id": headers["x-request-id"],
                }
            }


@pytest.mark.anyio
async def test_unknown_paths_are_404_and_wrong_methods_405(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        r = await client.get("/no/such/path")
        assert r.status_code == 404
        assert envelope(r) == {"code": "http.not_found", "message": "no such path"}
        r = await client.patch("/users/1")
        assert r.status_code == 405
        assert sorted(r.headers["allow"].split(", ")) == ["GET", "HEAD"]
        assert envelope(r) == {
            "code": "http.method_not_allowed",
            "message": "PATCH is not allowed here",
        }


@pytest.mark.anyio
async def test_a_405_allows_every_method_served_at_the_path(tmp_path: Path) -> None:
    """Two tasks share ``/things/{id}`` (POST and DELETE): ``Allow`` names both, not just
    the first route that matched the path (found by schemathesis' unsupported_method)."""
    async with serving(tmp_path) as client:
        for method in ("OPTIONS", "GET", "PATCH"):
            r = await client.request(method, "/things/1")
            assert r.status_code == 405
            assert r.headers["allow"] == "POST, DELETE"
            assert envelope(r)["code"] == "http.method_not_allowed"


@pytest.mark.anyio
async def test_bodies_over_the_limit_are_413_also_when_chunked(tmp_path: Path) -> None:
    expected = {"code": "http.body_too_large", "message": "the body is larger than 20000 bytes"}
    async with serving(tmp_path) as client:
        big = json.dumps({"name": "x" * 30000}).encode()
        r = await client.post("/things/1", content=big)
        assert r.status_code == 413 and envelope(r) == expected

        sent = []

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            yield b'{"name": "'
            for _ in range(20):
                sent.append(1)
                yield b"x" * 2000
            yield b'"}'

        r = await client.post("/things/1", content=chunks())
        assert "content-length" not in r.request.headers
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert r.status_code == 413 and envelope(r) == expected
        # just under the limit passes
        r = await client.post("/things/1", json={"name": "x" * 19000})
        assert r.status_code == 201


@pytest.mark.anyio
async def test_an_over_limit_upload_is_not_drained_the_connection_is_closed(
    tmp_path: Path,
) -> None:
    """After a 413 the server closes the connection instead of reading (and discarding)
    the rest of a chunked body that may never end."""
    async with serving(tmp_path) as client:
        port = client.base_url.port
        assert port is not None
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            chunk = b"x" * 25000
            await stream.send(
                b"POST /things/1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
                + f"{len(chunk):x}\r\n".encode()
                + chunk
                + b"\r\n"
            )
            received = b""
            with anyio.fail_after(5):  # without the close this waits for more chunks
                while True:
                    try:
                        data = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
                    received += data
    head = received.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 413")
    assert b"connection: close" in head


@pytest.mark.anyio
async def test_auth_failures_are_401_and_403(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        r = await client.get("/me")
        assert r.status_code == 401
        assert envelope(r) == {"code": "runner.unauthorized", "message": "authentication required"}
        r = await client.get("/me", headers={"Authorization": "Bearer not-a-jwt"})
        assert r.status_code == 401
        r = await client.get("/me", headers={"Authorization": f"Bearer {token()}"})
        assert (r.status_code, r.json()) == (200, {"sub": "ada"})
        r = await client.delete("/things/1", headers={"Authorization": f"Bearer {token()}"})
        assert r.status_code == 403
        assert envelope(r)["code"] == "runner.forbidden"
        admin = token(roles=["admin"])
        r = await client.delete("/things/1", headers={"Authorization": f"Bearer {admin}"})
        assert (r.status_code, r.json()) == (200, {"id": "1"})


@pytest.mark.anyio
async def test_validation_errors_are_422_naming_the_fields(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        r = await client.post("/things/1", json={"n": "three"})
        assert r.status_code == 422
        assert envelope(r) == {
            "code": "runner.validation",
            "message": "invalid input for 'echo': name: is required; "
            "n: 'three' is not of type 'integer'",
            "fields": [
                {"field": "name", "message": "is required"},
                {"field": "n", "message": "'three' is not of type 'integer'"},
            ],
        }
        r = await client.get("/users/abc")  # not an integer: left a string, refused
        assert r.status_code == 422 and envelope(r)["fields"][0]["field"] == "id"


@pytest.mark.anyio
async def test_rate_limited_calls_are_429_with_retry_after(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        assert (await client.get("/limited")).status_code == 200
        r = await client.get("/limited")
        assert r.status_code == 429
        assert envelope(r)["code"] == "runner.rate_limited"
        # 90.5 s window, one request: the wait is just under 90.5 s, rounded up
        assert r.headers["retry-after"] in ("90", "91")


@pytest.mark.anyio
async def test_timeouts_are_504(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        r = await client.get("/timed")
        assert r.status_code == 504
        assert envelope(r)["code"] == "runner.timeout"


@pytest.mark.anyio
async def test_an_untyped_exception_is_a_generic_500_and_logged_with_the_request_id(
    tmp_path: Path, plugin_records: list[logging.LogRecord]
) -> None:
    async with serving(tmp_path) as client:
        r = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert r.status_code == 500
    assert envelope(r) == {"code": "http.internal", "message": "internal server error"}
    assert b"secret-db-password" not in r.content and b"Traceback" not in r.content
    assert b"KeyError" not in r.content
    (record,) = [rec for rec in plugin_records if rec.name == "assemble.http"]
    assert record.levelno == logging.ERROR
    assert getattr(record, "request_id", None) == "req-500"
    assert "req-500" in record.getMessage() and "GET /boom" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    formatted = logging.Formatter().format(record)
    assert "Traceback" in formatted and "secret-db-password-in-message" in formatted


# -- CORS ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cors_is_off_by_default_and_on_when_configured(tmp_path: Path) -> None:
    origin = {"Origin": "https://app.example.com"}
    async with serving(tmp_path) as client:
        r = await client.get("/healthz", headers=origin)
        assert "access-control-allow-origin" not in r.headers
    manifest = MANIFEST.replace(
        "max_body_bytes: 20000}",
        "max_body_bytes: 20000, cors: {allow_origins: ['https://app.example.com'], "
        "allow_credentials: true}}",
    )
    async with serving(tmp_path, manifest) as client:
        r = await client.get("/healthz", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://app.example.com"
        assert r.headers["access-control-allow-credentials"] == "true"
        preflight = {
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        r = await client.options("/things/1", headers=preflight)
        assert r.status_code == 200
        assert "POST" in r.headers["access-control-allow-methods"]
        r = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_cors_star_with_credentials_is_a_config_error(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: api
        resources:
          server:
            use: http.server
            config:
              cors:
                allow_origins: ["*"]
                allow_credentials: true
        """,
    )
    assert len(found) == 1
    code, line, col, message = found[0]
    assert (code, line, col) == ("ASM603", 9, 28)  # at allow_credentials
    assert "allow_credentials: true` cannot allow every origin" in message


# -- validate-time checks -------------------------------------------------------------


def test_two_routes_on_one_method_and_path_are_reported_at_both(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: api
        tasks:
          a:
            run: t:echo
            tags: {http.route: {method: GET, path: "/users/{id}"}}
          b:
            run: t:echo
            tags: {http.route: {method: POST, path: "/users/{id}"}}
          c:
            run: t:echo
            tags:
              http.route: {method: GET, path: "/users/{user_id}"}
        """,
        t=TASKS,
    )
    dupes = [p for p in found if p[0] == "http/duplicate-route"]
    assert [(line, col) for _, line, col, _ in dupes] == [(6, 24), (13, 19)]
    assert "task 'a': GET /users/{id} is also the route of 'c'" in dupes[0][3]
    assert "task 'c': GET /users/{user_id} is also the route of 'a'" in dupes[1][3]
    assert len(found) == 2


def test_a_malformed_path_parameter_is_reported(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: api
        tasks:
          a:
            run: t:echo
            tags: {http.route: {method: GET, path: "/users/{1d}/{x}/{x}"}}
        """,
        t=TASKS,
    )
    assert [(c, m) for c, _, _, m in found] == [("http/bad-path", "'{1d}' is not a path parameter")]


# -- startup failures ---------------------------------------------------------------


@pytest.mark.anyio
async def test_a_taken_port_fails_startup_clearly_and_rolls_back(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    log = tmp_path / "disposed.txt"
    res = (
        f"def make(config):\n    return 1\n\ndef close(v):\n"
        f"    with open({str(log)!r}, 'a') as f:\n        f.write('disposed')\n"
    )
    manifest = f"""
    assemble: 1
    id: api
    resources:
      first: {{init: res:make, dispose: res:close}}
      server: {{use: http.server, config: {{port: {port}}}}}
    """
    compiled = app(tmp_path, manifest, t=TASKS, res=res)
    try:
        with pytest.raises(runner.errors.ResourceInitError) as caught:
            async with runner.run(compiled):
                pytest.fail("the app started")  # pragma: no cover
    finally:
        holder.close()
    cause = caught.value.__cause__
    assert isinstance(cause, HttpServerError)
    assert cause.message == f"http.server cannot listen on 127.0.0.1:{port}: Address already in use"
    assert "another process may hold the port" in cause.hint
    assert log.read_text() == "disposed"  # what was initialised before was disposed


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_on_trio_the_server_fails_clearly(tmp_path: Path) -> None:
    compiled = app(tmp_path, MANIFEST, t=TASKS)
    with pytest.raises(runner.errors.ResourceInitError) as caught:
        async with runner.run(compiled):
            pytest.fail("the app started")  # pragma: no cover
    cause = caught.value.__cause__
    assert isinstance(cause, HttpServerError)
    assert cause.message == (
        "http.server needs the asyncio backend: uvicorn and Starlette run on asyncio only"
    )


# -- the example app in a subprocess --------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_users_app(folder: Path, port: int) -> subprocess.Popen[str]:
    """``assemble run`` on a copy of manifests/users/ whose server listens on ``port``."""
    shutil.copytree(ROOT / "manifests/users", folder, ignore=shutil.ignore_patterns("__py*"))
    manifest = folder / "app.yaml"
    text = manifest.read_text()
    assert "port: 8080," in text
    manifest.write_text(text.replace("port: 8080,", f"port: {port},"))
    env = {**os.environ, "JWT_SECRET": SECRET}
    env.pop("ASSEMBLE_PLUGINS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "assembler", "run", str(manifest)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        with anyio.fail_after(20):
            while True:
                assert proc.poll() is None, proc.communicate()
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_the_users_example_app_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_users_app(tmp_path / "users", port)
    try:
        await wait_ready(base, proc)
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            r = await client.get("/health")
            assert r.status_code == 200 and r.json()["status"] == "ok"
            r = await client.post("/users", json={"name": "Ada", "email": "ada@example.com"})
            assert (r.status_code, r.json()) == (
                201,
                {"id": "2", "name": "Ada", "email": "ada@example.com"},
            )
            r = await client.post("/users", json={"name": "Bob", "email": "nope"})
            assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "email"
            r = await client.get("/users/2")
            assert r.status_code == 401
            assert r.json()["error"]["message"] == "authentication required"
            auth = {"Authorization": f"Bearer {token()}"}
            r = await client.get("/users/2", headers=auth)
            assert (r.status_code, r.json()) == (
                200,
                {"id": "2", "name": "Ada", "email": "ada@example.com"},
            )
            r = await client.get("/users/99", headers=auth)
            assert r.status_code == 404 and r.json()["error"]["code"] == "users.not_found"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == ""  # nothing on stdout: no uvicorn banner, no access log
    assert "uvicorn" not in err.lower() and "Started server" not in err
    assert "users_api is running" in err and "db disposed" in err


@pytest.mark.anyio
async def test_sigterm_lets_requests_in_flight_finish_then_disposes(tmp_path: Path) -> None:
    """20 requests of 2 s in flight, SIGTERM at 0.8 s: all succeed, exit 0, then dispose.

    The margins are wide for a loaded CI machine: 0.8 s for the 20 requests to reach the
    server before the signal, and over a second between the check that new connections
    are refused and the end of the requests."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_users_app(tmp_path / "users", port)
    finished: dict[int, float] = {}  # n -> when the server finished the task (its clock)
    try:
        await wait_ready(base, proc)
        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:

            async def call(n: int) -> None:
                r = await client.get("/slow", params={"seconds": 2, "n": n})
                assert r.status_code == 200
                body = r.json()
                assert (body["slept"], body["n"]) == (2, n)
                finished[n] = body["finished_at"]

            async def refused() -> bool:
                async with httpx.AsyncClient(base_url=base, timeout=2) as fresh:
                    try:
                        await fresh.get("/health")
                    except httpx.ConnectError:
                        return True
                    except httpx.TransportError:  # cut off as the listener closed
                        pass
                    return False

            start = time.monotonic()
            async with anyio.create_task_group() as tg:
                for n in range(20):
                    tg.start_soon(call, n)
                await anyio.sleep(0.8)
                proc.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                # shutdown begins: new connections are refused (soon, not at a fixed time) ...
                with anyio.fail_after(5):
                    while not await refused():
                        await anyio.sleep(0.05)
                assert not finished  # ... while the requests are still in flight
            elapsed = time.monotonic() - start
        _out, err = proc.communicate(timeout=20)
        exited = time.monotonic() - signalled
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert sorted(finished) == list(range(20))
    assert 2.0 <= elapsed < 6.0 and exited < 10.0  # well within shutdown_grace (10s)
    disposed = [line for line in err.splitlines() if "db disposed at" in line]
    assert len(disposed) == 1, err
    # the server finished every task (and wrote its response) before the db was disposed
    assert float(disposed[0].rsplit(" ", 1)[1]) > max(finished.values())


@pytest.mark.anyio
async def test_a_result_that_fails_its_schema_is_the_servers_fault_not_a_422(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(tmp_path) as client:
        r = await client.get("/bad-result")
    assert r.status_code == 500
    assert envelope(r) == {"code": "http.internal", "message": "internal server error"}
    assert "secret_internal_field" not in r.text


@pytest.mark.anyio
async def test_the_runtime_drains_as_long_as_the_server_grants_its_requests(
    tmp_path: Path,
) -> None:
    longer = MANIFEST.replace("{port: 0, max_body_bytes: 20000}", "{port: 0, shutdown_grace: 45s}")
    async with runner.run(app(tmp_path, longer, t=TASKS), drain_timeout=30) as rt:
        assert rt.drain_timeout == 45.0
    async with runner.run(app(tmp_path, MANIFEST, t=TASKS), drain_timeout=30) as rt:
        assert rt.drain_timeout == 30.0  # the default 30 s is longer than 15 s


@pytest.mark.anyio
async def test_a_request_past_the_shutdown_grace_is_cancelled_and_reported(
    tmp_path: Path, plugin_records: list[logging.LogRecord]
) -> None:
    manifest = MANIFEST.replace("{port: 0, max_body_bytes: 20000}", "{port: 0, shutdown_grace: 1s}")
    manifest += """
  slow:
    run: t:slow
    input_schema: {type: object, properties: {seconds: {type: number}}}
    tags: {http.route: {method: GET, path: /slow}}
"""
    outcome: list[Any] = []
    bodies: list[Any] = []

    async def call(url: str) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            try:
                r = await client.get(f"{url}/slow?seconds=30", headers={"X-Request-ID": "req-late"})
                outcome.append(r.status_code)
                bodies.append(r.json())
            except httpx.HTTPError as exc:
                outcome.append(type(exc).__name__)

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        async with runner.run(app(tmp_path, manifest, t=TASKS)) as rt:
            tg.start_soon(call, rt.resource("server").url)
            # accepted before shutdown begins: waited for, as a fixed sleep may be too
            # short for a loaded machine to connect and send the request
            with anyio.fail_after(10):
                while rt.in_flight == 0:
                    await anyio.sleep(0.01)
        stopped = time.monotonic() - start  # the 30 s request did not hold shutdown
    assert stopped < 10
    assert outcome == [503]  # an answer, in the envelope (checked below), not a reset
    assert bodies == [
        {
            "error": {
                "code": "runner.shutting_down",
                "message": "the request was cancelled: still running when shutdown_grace (1s) "
                "ran out",
                "request_id": "req-late",
            }
        }
    ]
    (record,) = [r for r in plugin_records if "cancelled" in r.getMessage()]
    assert record.name == "assemble.http" and record.levelno == logging.WARNING
    assert getattr(record, "request_id", None) == "req-late"
    assert record.getMessage() == (
        "GET /slow (task 'slow') (request req-late) was cancelled: still running when "
        "shutdown_grace (1s) ran out"
    )


@pytest.mark.anyio
async def test_a_server_that_dies_shuts_the_app_down_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    async def dies(self: Any) -> None:
        raise RuntimeError("uvicorn main loop died")

    monkeypatch.setattr(uvicorn.Server, "main_loop", dies)
    compiled = app(tmp_path, MANIFEST, t=TASKS)
    start = time.monotonic()
    with pytest.raises(runner.errors.DisposeError) as caught:
        async with runner.run(compiled):
            await anyio.sleep(10)  # cancelled: the app stops instead of idling unserved
    assert time.monotonic() - start < 5

    def leaves(exc: BaseException) -> list[BaseException]:
        if isinstance(exc, BaseExceptionGroup):
            return [leaf for e in exc.exceptions for leaf in leaves(e)]
        return [exc]

    died = [e for e in leaves(caught.value) if isinstance(e, HttpServerError)]
    assert len(died) == 1 and "uvicorn main loop died" in str(died[0])


@pytest.mark.anyio
async def test_an_address_not_of_this_machine_gets_its_own_hint(tmp_path: Path) -> None:
    foreign = MANIFEST.replace("{port: 0, max_body_bytes: 20000}", "{host: 192.0.2.1, port: 0}")
    with pytest.raises(runner.errors.ResourceInitError) as caught:
        async with runner.run(app(tmp_path, foreign, t=TASKS)):
            pass
    cause = caught.value.__cause__
    assert isinstance(cause, HttpServerError)
    assert "cannot listen on 192.0.2.1:0" in cause.message
    assert "set `host` to an address of this machine" in cause.hint


@pytest.mark.anyio
async def test_only_runner_errors_are_typed_not_lookalikes(tmp_path: Path) -> None:
    """A RunnerError subclass answers with its code and status; a third-party exception
    that happens to carry `code` and `http_status` (a payment library's) is a 500 whose
    message never reaches the caller."""
    code = """
from runner.errors import RunnerError

class EmailTaken(RunnerError):
    code = "users.email_taken"
    http_status = 409

class StripeLike(Exception):
    code = "api_key_invalid"
    http_status = 401

def taken(input):
    raise EmailTaken("the email is already registered")

def lookalike(input):
    raise StripeLike("Invalid API Key provided: sk_live_****1234")
"""
    manifest = """
assemble: 1
id: typed
resources:
  server: {use: http.server, config: {port: 0}}
tasks:
  taken: {run: typed_code:taken, tags: {http.route: {method: POST, path: /taken}}}
  lookalike: {run: typed_code:lookalike, tags: {http.route: {method: POST, path: /odd}}}
"""
    async with (
        runner.run(app(tmp_path, manifest, typed_code=code)) as rt,
        httpx.AsyncClient(base_url=rt.resource("server").url) as client,
    ):
        taken = await client.post("/taken", json={})
        odd = await client.post("/odd", json={})
    assert taken.status_code == 409
    assert envelope(taken) == {
        "code": "users.email_taken",
        "message": "the email is already registered",
    }
    assert odd.status_code == 500 and "sk_live" not in odd.text
