"""manifests/quotes: every built-in component in one app, run as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

import assembler
import runner
from runner.errors import Forbidden, Unauthorized

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "manifests" / "quotes" / "app.yaml"
BUILT_IN = {"auth", "cache", "logging", "redis", "resilience"}
SECRET = "a-test-secret-that-is-long-enough-0123456789"

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_url")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the app uses redis.client (asyncio only)


def token(sub: str, roles: list[str], secret: str = SECRET) -> str:
    now = int(time.time())
    claims = {"sub": sub, "roles": roles, "iss": "quotes", "iat": now, "exp": now + 300}
    return jwt.encode(claims, secret, algorithm="HS256")


def test_the_app_uses_every_built_in_component_type() -> None:
    plugins = assembler.load_plugins()
    checked = assembler.check(str(APP), plugins, {"JWT_SECRET": SECRET})
    assert checked.ok and checked.manifest is not None, checked.diagnostics
    used = {
        entry["use"]
        for section in ("resources", "middleware", "tasks")
        for _, body, _ in checked.manifest.components(section)
        for entry in [body, *(m for m in body.get("middleware", []) if isinstance(m, dict))]
        if "use" in entry
    }
    backends = {
        m["config"].get("backend", "memory")
        for _, body, _ in checked.manifest.components("tasks")
        for m in body.get("middleware", [])
        if isinstance(m, dict) and m.get("use") == "rate_limit"
    }
    built_in = {c for c, comp in plugins.components.items() if comp.plugin in BUILT_IN}
    assert used == built_in, built_in ^ used
    assert backends == {"memory", "redis"}


async def test_every_task_answers_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    plugins = assembler.load_plugins()
    checked = assembler.check(str(APP), plugins, {"JWT_SECRET": SECRET})
    assert checked.app is not None, checked.diagnostics
    editor = {"token": token("ada", ["editor"])}
    async with runner.run(checked.app) as rt:
        assert (await rt.run_task("get_quote", {"id": 2}))["text"].startswith("Errors")
        assert len(await rt.run_task("popular", None)) == 2
        remote = await rt.run_task("fetch_remote", None)
        assert remote["source"] == "remote"  # the first call fails; retry answers
        added = await rt.run_task("add_quote", {**editor, "text": "Flat is better."})
        assert added["by"] == "ada"
        with runner.current_request.provide(
            runner.Request("req-7", {"authorization": f"Bearer {token('bo', [])}"})
        ):
            assert await rt.run_task("whoami", None) == {"subject": "bo", "roles": []}
            with pytest.raises(Forbidden):
                await rt.run_task("add_quote", {"text": "Nope."})
        with pytest.raises(Unauthorized):
            await rt.run_task("add_quote", {"token": token("ada", ["editor"], "x" * 40)})
    err = capsys.readouterr().err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r.get("request_id") == "req-7" for r in records)
    assert SECRET not in err and editor["token"] not in err


def call(task: str, payload: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JWT_SECRET": SECRET}
    return subprocess.run(
        [sys.executable, "-m", "assembler", "call", str(APP), task, "--input", json.dumps(payload)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_assemble_call_runs_the_app() -> None:
    got = call("get_quote", {"id": 1})
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {
        "id": 1,
        "text": "Simple is better than complex.",
        "by": "seed",
    }
    editor = token("ada", ["editor"])
    added = call("add_quote", {"token": editor, "text": "Sparse is better than dense."})
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["by"] == "ada"
    assert editor not in added.stderr and SECRET not in added.stderr
    records = [json.loads(x) for x in added.stderr.splitlines() if x.startswith("{")]
    ids = {r.get("request_id") for r in records if r.get("task") == "add_quote"}
    assert len(ids) == 1 and str(ids.pop()).startswith("cli-")  # the CLI is an edge
    refused = call("add_quote", {"token": token("bo", ["reader"]), "text": "x"})
    assert refused.returncode == 1 and refused.stdout == ""
    assert "error[runner.forbidden]" in refused.stderr and "Traceback" not in refused.stderr
