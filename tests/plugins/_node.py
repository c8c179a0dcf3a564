"""The real npm package ``@bluelibs/runner@5.5.0`` under the machine's Node, for interop tests.

``runner_js()`` installs the package once into a cached folder (``ASSEMBLE_NODE_CACHE``,
else ``~/.cache/assemble/runner-js-5.5.0``) and returns that folder; ``node(script)``
runs a CommonJS script there (so ``require("@bluelibs/runner")`` resolves) and returns
its completed process. Where ``node``/``npm`` are missing the test is skipped with that
reason; on CI (``CI`` set) that is a failure, like the other services.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

RUNNER_JS = "@bluelibs/runner@5.5.0"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the Node interop tests must run there)", pytrace=False)
    pytest.skip(reason)


def runner_js() -> Path:
    """The folder holding ``node_modules/@bluelibs/runner`` at 5.5.0 (installed if absent)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        _unavailable(
            "node and npm are needed for the Runner interop tests (apt install nodejs npm)"
        )
    base = Path(
        os.environ.get("ASSEMBLE_NODE_CACHE")
        or Path.home() / ".cache" / "assemble" / "runner-js-5.5.0"
    )
    base.mkdir(parents=True, exist_ok=True)
    marker = base / "node_modules" / "@bluelibs" / "runner" / "package.json"
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions install once
        if not marker.exists() or '"version": "5.5.0"' not in marker.read_text():
            if not (base / "package.json").exists():
                (base / "package.json").write_text(
                    '{"name": "assemble-interop", "private": true}\n'
                )
            done = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", RUNNER_JS],
                cwd=base,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                _unavailable(f"npm install {RUNNER_JS} failed: {done.stderr.strip()[-500:]}")
    return base


def node(
    script: str, *, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (CommonJS) with Node in the cached folder."""
    base = runner_js()
    path = base / f"script-{os.getpid()}-{abs(hash(script))}.cjs"
    path.write_text(script)
    try:
        return subprocess.run(
            ["node", str(path)],
            cwd=base,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    finally:
        path.unlink(missing_ok=True)


async def node_async(
    script: str, *, seconds: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """:func:`node` without blocking the event loop (for a server running in this loop)."""
    import anyio

    base = runner_js()
    path = base / f"script-{os.getpid()}-{abs(hash(script))}.cjs"
    path.write_text(script)
    try:
        with anyio.fail_after(seconds):
            return await anyio.run_process(
                ["node", str(path)], cwd=base, env={**os.environ, **(env or {})}, check=False
            )
    finally:
        path.unlink(missing_ok=True)


def script_path(script: str, name: str) -> Path:
    """Write ``script`` into the cached folder (to start it as a long-running process)."""
    path = runner_js() / f"{name}-{os.getpid()}.cjs"
    path.write_text(script)
    return path
