"""Interop with the real ``@bluelibs/runner@5.5.0`` under Node, both directions.

- Runner's ``createHttpClient`` (with Runner's ``Serializer``) calls a Python
  ``tunnel.server``: a Date in the input and the result, a remote error as an error, a
  wrong token and an unlisted task refused.
- A Python ``tunnel.client`` calls tasks that a Node Runner app exposes with
  ``nodeExposure``.

The package is installed once into a cached folder (tests/plugins/_node.py); without
``node``/``npm`` these tests are skipped with that reason (a failure when ``CI`` is set).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest

import runner
from assemble_tunnel import RemoteError, TunnelError

from ._apps import app
from ._node import node_async, script_path
from .test_tunnel import TOKEN, server_app, url_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


NODE_CLIENT = r"""
const { createHttpClient, Serializer } = require("@bluelibs/runner");
const out = {};
const client = (token) => createHttpClient({
  baseUrl: process.env.BASE, serializer: new Serializer(), auth: { token }, timeoutMs: 5000,
});
const describe = (e) => ({ name: e.name, code: e.code, message: e.message, id: e.id,
                           data: e.data, httpCode: e.httpCode });
(async () => {
  const c = client(process.env.TOKEN);
  const at = new Date("2024-02-29T12:34:56.789Z");
  const r = await c.task("app.tasks.add", { a: 40, b: 2, at });
  out.add = { sum: r.sum, laterIsDate: r.later instanceof Date, later: r.later.toISOString(),
              wasDatetime: r.was_datetime, tagsIsSet: r.tags instanceof Set, tags: [...r.tags] };
  for (const [key, id, input] of [["missing", "app.tasks.missing", { id: 7 }],
                                  ["boom", "app.tasks.boom", {}],
                                  ["hidden", "app.hidden", {}]]) {
    try { await c.task(id, input); out[key] = "no error"; } catch (e) { out[key] = describe(e); }
  }
  try { await client("wrong-token-0123456789").task("app.whoami", {}); out.wrong = "no error"; }
  catch (e) { out.wrong = describe(e); }
  await c.event("user.created", { id: 5, when: at });
  out.emitted = true;
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


async def test_runners_http_client_calls_a_python_tunnel_server(tmp_path: Path) -> None:
    async with server_app(tmp_path) as srv:
        done = await node_async(NODE_CLIENT, env={"BASE": url_of(srv), "TOKEN": TOKEN})
        assert done.returncode == 0, done.stderr.decode()
        out = json.loads(done.stdout)
        import srv_code  # type: ignore[import-not-found]

        seen = srv_code.SEEN
    assert out["add"] == {
        "sum": 42,
        "laterIsDate": True,
        "later": "2024-02-29T12:34:57.789Z",
        "wasDatetime": True,
        "tagsIsSet": True,
        "tags": ["x"],
    }
    assert out["missing"] == {
        "name": "TunnelError",
        "code": "users.not_found",
        "message": "no user 7",
        "id": "users.not_found",
        "data": {},
        "httpCode": 404,
    }
    assert out["boom"]["code"] == "INTERNAL_ERROR"
    assert out["boom"]["message"] == "Internal Error"
    assert (out["hidden"]["code"], out["hidden"]["message"]) == (
        "FORBIDDEN",
        "Task app.hidden not exposed",
    )
    assert out["wrong"]["code"] == "UNAUTHORIZED"
    assert seen == [
        (
            "server",
            {
                "id": 5,
                "when": dt.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=dt.UTC),
                "seen_by": "server",
            },
        )
    ]


NODE_SERVER = r"""
const { r, run, globals } = require("@bluelibs/runner");
const { nodeExposure } = require("@bluelibs/runner/node");
const port = Number(process.env.PORT), token = process.env.TOKEN;
const NotFound = r.error("app.errors.NotFound").httpCode(404)
  .format((d) => `no user ${d.id}`).build();
const add = r.task("app.tasks.add").run(async (input) => ({
  sum: input.a + input.b, later: new Date(input.at.getTime() + 1000),
  wasDate: input.at instanceof Date, tags: new Set(["x"]), big: 2n ** 64n, nan: NaN,
})).build();
const boom = r.task("app.tasks.boom")
  .run(async () => { throw new Error("secret detail"); }).build();
const missing = r.task("app.tasks.missing").throws([NotFound])
  .run(async (input) => { NotFound.throw({ id: input.id }); }).build();
const hidden = r.task("app.tasks.hidden").run(async () => 1).build();
const seen = [];
const created = r.event("user.created").build();
const onCreated = r.hook("app.hooks.onCreated").on(created)
  .run(async (e) => { seen.push(e.data); console.log("EVENT " + JSON.stringify({
    id: e.data.id, whenIsDate: e.data.when instanceof Date })); }).build();
const tunnel = r.resource("app.tunnel").tags([globals.tags.tunnel]).init(async () => ({
  mode: "server", transport: "http", tasks: [add.id, boom.id, missing.id], events: [created.id],
})).build();
const app = r.resource("app").register([NotFound, add, boom, missing, hidden, created,
  onCreated, tunnel,
  nodeExposure.with({ http: { basePath: "/__runner", listen: { port, host: "127.0.0.1" },
                              auth: { token } } })]).build();
run(app, { shutdownHooks: true, logs: { printThreshold: null } })
  .then(() => console.log("READY"))
  .catch((e) => { console.error(e); process.exit(1); });
"""

PY_CLIENT = """
assemble: 1
id: py_client
resources:
  node:
    use: tunnel.client
    config:
      url: ${env.URL}
      token: ${env.TOKEN}
      tasks: ["app.tasks.*"]
      events: [user.created]
events:
  user.created: {}
tasks:
  app.tasks.add: {remote: true}
  app.tasks.boom: {remote: true}
  app.tasks.missing: {remote: true}
  app.tasks.hidden: {remote: true}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_python_tunnel_client_calls_a_node_runner_app(tmp_path: Path) -> None:
    port = free_port()
    path = script_path(NODE_SERVER, "node-server")
    env = {**os.environ, "PORT": str(port), "TOKEN": TOKEN}
    try:
        async with await anyio.open_process(["node", str(path)], cwd=path.parent, env=env) as proc:
            assert proc.stdout is not None
            lines: list[str] = []
            buffer = b""
            with anyio.fail_after(30):
                while "READY" not in lines:
                    chunk = await proc.stdout.receive()
                    buffer += chunk
                    *done, rest = buffer.split(b"\n")
                    lines += [d.decode().strip() for d in done]
                    buffer = rest
            url = f"http://127.0.0.1:{port}/__runner"
            compiled = app(tmp_path, PY_CLIENT, {"URL": url, "TOKEN": TOKEN})
            async with runner.run(compiled) as rt:
                at = dt.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=dt.UTC)
                result: dict[str, Any] = await rt.run_task(
                    "app.tasks.add", {"a": 40, "b": 2, "at": at}
                )
                with pytest.raises(RemoteError) as missing:
                    await rt.run_task("app.tasks.missing", {"id": 7})
                with pytest.raises(RemoteError) as boom:
                    await rt.run_task("app.tasks.boom")
                with pytest.raises(TunnelError) as hidden:
                    await rt.run_task("app.tasks.hidden")
                await rt.emit("user.created", {"id": 5, "when": at})
                with anyio.fail_after(10):
                    while not any(line.startswith("EVENT") for line in lines):
                        buffer += await proc.stdout.receive()
                        *done, buffer = buffer.split(b"\n")
                        lines += [d.decode().strip() for d in done]
            proc.terminate()
    finally:
        path.unlink(missing_ok=True)
    assert result == {
        "sum": 42,
        "later": at + dt.timedelta(seconds=1),
        "wasDate": True,
        "tags": {"x"},
        "big": 2**64,
        "nan": result["nan"],
    }
    assert result["nan"] != result["nan"]  # NaN came back as NaN
    assert (missing.value.code, missing.value.http_status) == ("app.errors.NotFound", 404)
    assert (missing.value.message, missing.value.data) == ("no user 7", {"id": 7})
    assert (boom.value.code, boom.value.message) == ("INTERNAL_ERROR", "Internal Error")
    assert hidden.value.remote_code == "FORBIDDEN"
    (event,) = [line for line in lines if line.startswith("EVENT")]
    assert json.loads(event.removeprefix("EVENT ")) == {"id": 5, "whenIsDate": True}
