"""The flagship example, manifests/users-api, end to end: the README's main command in a
subprocess on a free port, driven over real HTTP through the README's walkthrough.

Twice: on the embedded defaults (SQLite in a temporary DATA_DIR, in-process cache and
rate limits), and with the prod overlay (a fresh PostgreSQL database, Redis with this
run's own key prefixes).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "manifests" / "users-api" / "app.yaml"
PROD = ROOT / "manifests" / "users-api" / "prod.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(port: int, env: dict[str, str], *overlays: Path) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "assembler", "run", str(APP)]
    for overlay in overlays:
        args += ["--overlay", str(overlay)]
    full = {**os.environ, "PORT": str(port), **env}
    full.pop("ASSEMBLE_PLUGINS", None)
    return subprocess.Popen(
        args, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited: {proc.communicate()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the app did not get ready in 30 s"
        time.sleep(0.1)


def walkthrough(base: str) -> None:
    """The README's curl walkthrough, with the exact statuses."""
    with httpx.Client(base_url=base, timeout=10) as client:
        _walkthrough(client)


def _walkthrough(c: httpx.Client) -> None:
    assert c.get("/health").json() == {"status": "ok"}

    ada = {"email": "ada@example.com", "name": "Ada", "password": "correct-horse-battery"}
    created = c.post("/users", json=ada)
    assert created.status_code == 201, created.text
    user = created.json()
    assert set(user) == {"id", "email", "name", "roles", "created_at"}  # no password material
    assert "password" not in created.text and "argon2" not in created.text
    assert (user["email"], user["name"], user["roles"]) == ("ada@example.com", "Ada", ["user"])
    uid = user["id"]

    taken = c.post("/users", json=ada)
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "users.email_taken"
    assert c.post("/users", json={**ada, "password": "short"}).status_code == 422

    login = c.post("/auth/token", json={"email": ada["email"], "password": ada["password"]})
    assert login.status_code == 200
    token = {"authorization": f"Bearer {login.json()['token']}"}
    wrong = c.post("/auth/token", json={"email": ada["email"], "password": "not-her-password"})
    assert wrong.status_code == 401

    assert c.get(f"/users/{uid}").status_code == 401  # no token
    got = c.get(f"/users/{uid}", headers=token)
    assert got.status_code == 200 and got.json() == user
    settings = c.get(f"/users/{uid}/settings", headers=token)
    assert settings.json() == {"theme": "light", "notifications": True}

    posts = [
        c.post("/posts", json={"title": f"post {i}", "body": "..."}, headers=token).status_code
        for i in range(11)
    ]
    assert posts == [201] * 10 + [429]

    forbidden = c.delete(f"/users/{uid}", headers=token)
    assert forbidden.status_code == 403
    assert c.get("/users/1", headers=token).status_code == 403  # another user: no

    admin_login = c.post(
        "/auth/token", json={"email": "admin@example.com", "password": "admin-password"}
    )
    admin = {"authorization": f"Bearer {admin_login.json()['token']}"}
    mails = c.get("/admin/outbox", headers=admin)
    assert mails.status_code == 200
    assert [(m["recipient"], m["subject"]) for m in mails.json()] == [
        ("ada@example.com", "Welcome!")
    ]
    assert c.get("/admin/outbox", headers=token).status_code == 403

    assert c.get(f"/users/{uid}", headers=admin).status_code == 200  # now cached
    assert c.delete(f"/users/{uid}", headers=admin).status_code == 204
    gone = c.get(f"/users/{uid}", headers=admin)  # never served from the cache
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "users.not_found"
    refused = c.get(f"/users/{uid}", headers=token)  # a deleted user's token
    assert refused.status_code == 401


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_the_walkthrough_on_the_embedded_defaults(tmp_path: Path) -> None:
    port = free_port()
    proc = start(port, {"DATA_DIR": str(tmp_path)})
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        walkthrough(f"http://127.0.0.1:{port}")
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert (tmp_path / "users-api.db").exists()
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r.get("event") == "task.complete" and r["task"] == "register" for r in records)
    assert "correct-horse-battery" not in err  # logging.tasks never logs the input


@pytest.fixture
def fresh_database(postgres_url: str) -> Iterator[str]:
    """A database of this test's own (dropped afterwards), on the test PostgreSQL."""
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    name = f"users_api_{uuid.uuid4().hex[:10]}"
    admin_url = postgres_url.replace("postgresql+asyncpg", "postgresql").rsplit("/", 1)[0]

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(f"{admin_url}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def prod(
    tmp_path: Path, fresh_database: str, redis_url: str, redis_sync: Any
) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """``(run id, overlay, env)`` for the prod overlay on a fresh database, with Redis
    keys of this run's own (deleted afterwards)."""
    run_id = uuid.uuid4().hex[:8]
    prefixes = tmp_path / "prefixes.yaml"
    prefixes.write_text(
        "middleware:\n"
        f"  user_cache: {{config: {{prefix: 'test:{run_id}:cache:'}}}}\n"
        f"  post_limit: {{config: {{prefix: 'test:{run_id}:limit:'}}}}\n"
    )
    yield (
        run_id,
        prefixes,
        {
            "DATABASE_URL": fresh_database,
            "REDIS_URL": redis_url,
            "DATA_DIR": str(tmp_path),
            "JWT_SECRET": "test-secret-" + "s" * 40,  # prod.yaml has no development default
            "ADMIN_PASSWORD": "admin-password",
        },
    )
    keys = list(redis_sync.scan_iter(match=f"test:{run_id}:*"))
    if keys:
        redis_sync.delete(*keys)


def test_the_walkthrough_on_postgres_and_redis_with_the_prod_overlay(
    tmp_path: Path, prod: tuple[str, Path, dict[str, str]], redis_sync: Any
) -> None:
    run_id, prefixes, env = prod
    port = free_port()
    proc = start(port, env, PROD, prefixes)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        walkthrough(f"http://127.0.0.1:{port}")
        cached = list(redis_sync.scan_iter(match=f"test:{run_id}:cache:*"))
        limited = list(redis_sync.scan_iter(match=f"test:{run_id}:limit:*"))
        assert limited, "the rate limit lives in Redis"
        assert cached, "GET /users/{id} results are cached in Redis"
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert not (tmp_path / "users-api.db").exists()  # no SQLite: PostgreSQL held the data


def test_the_graph_in_the_docs_is_the_apps_graph() -> None:
    drawn = subprocess.run(
        [sys.executable, "-m", "assembler", "graph", str(APP)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "ASSEMBLE_PLUGINS"},
    )
    assert drawn.returncode == 0, drawn.stderr
    page = (ROOT / "docs" / "users-api.md").read_text()
    block = page.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block == drawn.stdout, "docs/users-api.md: paste `assemble graph` output again"


def test_the_signup_webhook_is_retried_on_5xx_final_on_4xx_and_never_fails_a_signup(
    tmp_path: Path,
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = [500, 200, 404]  # signup 1: a 500 then a 200; signup 2: a 404 (final)
    seen: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(answers.pop(0) if answers else 503)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    proc = start(port, {"DATA_DIR": str(tmp_path), "WEBHOOK_URL": url})
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for email in ("one@example.com", "two@example.com"):
                r = c.post("/users", json={"email": email, "name": "N", "password": "p" * 12})
                assert r.status_code == 201, r.text
    finally:
        code, err = stop(proc)
        server.shutdown()
        server.server_close()
    assert code == 0, err
    assert [s["event"] for s in seen] == ["user_registered"] * 3  # 500 retried once, 404 not
    assert [s["user_id"] for s in seen] == [2, 2, 3]


def test_a_delete_in_one_process_is_never_served_from_the_cache_by_another(
    tmp_path: Path, prod: tuple[str, Path, dict[str, str]], redis_sync: Any
) -> None:
    """Two processes behind one balancer (prod overlay: one database, one Redis cache):
    a user deleted through one is a 404 through the other at once, not after the TTL."""
    run_id, prefixes, env = prod
    procs: list[subprocess.Popen[str]] = []
    try:
        bases = []
        for _ in range(2):  # one after the other: the first creates the default admin
            port = free_port()
            procs.append(start(port, env, PROD, prefixes))
            bases.append(f"http://127.0.0.1:{port}")
            wait_ready(bases[-1], procs[-1])
        with (
            httpx.Client(base_url=bases[0], timeout=10) as a,
            httpx.Client(base_url=bases[1], timeout=10) as b,
        ):
            ada = {"email": "ada@example.com", "name": "Ada", "password": "correct-horse-1"}
            uid = a.post("/users", json=ada).json()["id"]
            login = {"email": "admin@example.com", "password": "admin-password"}
            admin = {"authorization": f"Bearer {a.post('/auth/token', json=login).json()['token']}"}
            assert b.get(f"/users/{uid}", headers=admin).status_code == 200  # cached by b
            entries = list(redis_sync.scan_iter(match=f"test:{run_id}:cache:get_user:*"))
            assert a.get(f"/users/{uid}", headers=admin).status_code == 200  # the same entry
            assert len(entries) == 1 and entries == list(
                redis_sync.scan_iter(match=f"test:{run_id}:cache:get_user:*")
            )
            generation = redis_sync.get(f"test:{run_id}:cache:@generation")
            assert a.delete(f"/users/{uid}", headers=admin).status_code == 204
            assert redis_sync.get(f"test:{run_id}:cache:@generation") != generation
            gone = b.get(f"/users/{uid}", headers=admin)
            assert gone.status_code == 404, gone.text
    finally:
        codes = [stop(proc) for proc in procs]
    assert [code for code, _ in codes] == [0, 0], codes
