"""schemathesis against the OpenAPI document that ``http.server`` generates.

The users example (manifests/users/) runs under ``assemble run`` in a subprocess on a
free loopback port; schemathesis loads ``/openapi.json`` from it over real HTTP and runs
its default checks (server errors, status codes, content types, response headers and
schemas, negative data rejected, positive data accepted, auth not ignored, ...) on every
operation with a bounded, derandomized number of examples, so CI is deterministic.
Every request carries a valid JWT for the app's secret, so the protected route is
exercised past ``auth.jwt`` (schemathesis' ``ignored_auth`` check also calls it without).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "schemathesis-test-secret-" + "s" * 32
MAX_EXAMPLES = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bearer() -> dict[str, str]:
    claims = {"sub": "ada", "exp": int(time.time()) + 3600, "roles": ["user"]}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


@pytest.fixture(scope="module")
def users_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The users example under ``assemble run`` on a free port; yields its base URL."""
    folder = tmp_path_factory.mktemp("schemathesis") / "users"
    shutil.copytree(ROOT / "manifests/users", folder, ignore=shutil.ignore_patterns("__py*"))
    manifest = folder / "app.yaml"
    text = manifest.read_text()
    assert "port: 8080," in text
    port = free_port()
    manifest.write_text(text.replace("port: 8080,", f"port: {port},"))
    env = {**os.environ, "JWT_SECRET": SECRET}
    env.pop("ASSEMBLE_PLUGINS", None)
    log = folder / "server.log"  # a file, not a pipe: a full pipe would block the server
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assembler", "run", str(manifest)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the users app did not get ready in 20 s"
            time.sleep(0.05)
        yield base
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        assert proc.returncode == 0, log.read_text()
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def users_schema(users_app: str) -> Any:
    schema = schemathesis.openapi.from_url(f"{users_app}/openapi.json", timeout=10)
    # NUL is refused by the boundary rule (422 before any task), which the document does
    # not spell out per string: not "positive data" (tests/hostile sends it on purpose)
    schema.config.generation.update(allow_x00=False)
    return schema


def test_the_generated_document_lists_every_route(users_app: str) -> None:
    """Guards the parametrized test below against passing on an empty document."""
    doc = httpx.get(f"{users_app}/openapi.json", timeout=10).json()
    operations = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert operations == {
        ("GET", "/health"),
        ("GET", "/users/{id}"),
        ("POST", "/users"),
        ("GET", "/slow"),
    }
    assert doc["paths"]["/users/{id}"]["get"]["security"] == [{"bearerAuth": []}]


def test_the_users_api_passes_schemathesis_default_checks(users_schema: Any) -> None:
    """Each operation in turn, through hypothesis directly.

    Not schemathesis' pytest plugin (``from_fixture`` / ``parametrize``): it reads pytest
    internals that pytest 9.2 removed; this drives the same strategies and checks.
    """
    operations = [result.ok() for result in users_schema.get_all_operations()]
    assert len(operations) == 4
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=bearer(), timeout=10)

        check()
