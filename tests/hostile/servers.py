"""The flagship app as a stranger meets it: manifests/users-api under ``assemble run``.

On SQLite (its embedded defaults) or on PostgreSQL and Redis (the prod overlay, a fresh
database, Redis keys of its own), on a free loopback port, its log in a file. Every
secret it is given or hands out is recorded in a :class:`LogBook`, and the session's
last step reads every log for them (tests/hostile/conftest.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "manifests" / "users-api" / "app.yaml"
PROD = ROOT / "manifests" / "users-api" / "prod.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def psql(sql: str, database: str = "postgres") -> str:
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-qAtc", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@dataclass
class LogBook:
    """Every log file the hostile suite made, and every secret that must not be in one."""

    logs: list[Path] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def secret(self, value: str) -> str:
        self.secrets.add(value)
        return value

    def leaks(self) -> list[str]:
        """``file: what`` for each secret (or hash, or token) found in a log."""
        found = []
        for path in self.logs:
            text = path.read_text(errors="replace") if path.exists() else ""
            for secret in sorted(self.secrets):
                if secret in text:
                    found.append(f"{path.name}: a secret ({secret[:6]}...)")
            for marker in ("$argon2", "eyJhbGci", "Bearer ey"):
                if marker in text:
                    found.append(f"{path.name}: {marker!r}")
        return found


@dataclass
class UsersApi:
    """A running users-api: ``base`` URL, its secrets, helpers to mint tokens."""

    backend: str
    base: str
    proc: subprocess.Popen[bytes]
    log: Path
    secret: str
    admin_password: str
    database: str  # a PostgreSQL database name, or the SQLite file's path
    book: LogBook

    def token(self, sub: str, roles: list[str] | None = None, **claims: Any) -> str:
        """A token signed with the app's own secret (as if issued by it)."""
        body = {"sub": sub, "roles": roles or ["user"], "exp": int(time.time()) + 3600, **claims}
        return self.book.secret(jwt.encode(body, self.secret, algorithm="HS256"))

    def login(self, email: str, password: str) -> dict[str, str]:
        answer = httpx.post(
            f"{self.base}/auth/token", json={"email": email, "password": password}, timeout=20
        )
        assert answer.status_code == 200, answer.text
        return {"authorization": f"Bearer {self.book.secret(answer.json()['token'])}"}

    def admin(self) -> dict[str, str]:
        return self.login("admin@example.com", self.admin_password)

    def sql(self, statement: str) -> str:
        """Run SQL on the app's own database (to demote a user, say)."""
        if self.backend == "postgresql":
            return psql(statement, self.database)
        import sqlite3

        with sqlite3.connect(self.database) as conn:
            rows = conn.execute(statement).fetchall()
        return "\n".join("|".join(map(str, r)) for r in rows)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hang is the failure
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def rss_peak_kib(self) -> int:
        """The server's peak resident memory (VmHWM), in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc")  # pragma: no cover


def start(
    backend: str,
    folder: Path,
    book: LogBook,
    redis_url: str = "redis://127.0.0.1:6379/0",
    postgres: str = "127.0.0.1:5432",
    overlay: str = "",
    root: Path = ROOT,
    **env: str,
) -> UsersApi:
    """users-api on ``backend`` (``sqlite`` or ``postgresql``), ready to serve.

    ``postgres`` and ``redis_url`` say where the app finds its services (a fault proxy);
    ``overlay`` is YAML laid over the manifest last (tighter timeouts); ``root`` is the
    source tree to run (another checkout: bench/faults.py compares two)."""
    folder.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:8]
    secret = book.secret(f"hostile-jwt-{run}-" + uuid.uuid4().hex)
    admin_password = book.secret(f"Adm1n-{run}-pw")
    port = free_port()
    manifest = root / APP.relative_to(ROOT)
    args = [sys.executable, "-m", "assembler", "run", str(manifest)]
    full = {
        **os.environ,
        "PORT": str(port),
        "DATA_DIR": str(folder),
        "JWT_SECRET": secret,
        "ADMIN_PASSWORD": admin_password,
        **env,
    }
    full.pop("ASSEMBLE_PLUGINS", None)
    if root != ROOT:
        full["PYTHONPATH"] = f"{root}{os.pathsep}{root / 'plugins'}"
    database = str(folder / "users-api.db")
    if backend == "postgresql":
        database = f"hostile_{run}"
        psql(f'CREATE DATABASE "{database}"')
        prefixes = folder / "prefixes.yaml"
        known = manifest.read_text()
        prefixes.write_text(
            "middleware:\n"
            + "".join(
                f"  {m}: {{config: {{prefix: 'hostile:{run}:{m}:'}}}}\n"
                for m in ("user_cache", "post_limit", "login_per_client", "login_per_email")
                if f"\n  {m}:" in known
            )
        )
        args += ["--overlay", str(root / PROD.relative_to(ROOT)), "--overlay", str(prefixes)]
        url = f"postgresql+asyncpg://postgres@{postgres}/{database}"
        full.update(DATABASE_URL=url, REDIS_URL=redis_url)
    if overlay:
        (folder / "extra.yaml").write_text(overlay)
        args += ["--overlay", str(folder / "extra.yaml")]
    log = folder / f"users-api-{backend}-{run}.log"
    book.logs.append(log)
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(args, env=full, stdout=sink, stderr=subprocess.STDOUT, cwd=root)
    app = UsersApi(
        backend, f"http://127.0.0.1:{port}", proc, log, secret, admin_password, database, book
    )
    _wait_ready(app)
    return app


def _wait_ready(app: UsersApi) -> None:
    deadline = time.monotonic() + 30
    while True:
        if app.proc.poll() is not None:
            raise AssertionError(f"users-api exited: {app.log.read_text()}")
        try:
            if httpx.get(f"{app.base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "users-api did not get ready in 30 s"
        time.sleep(0.1)


def drop(app: UsersApi) -> None:
    """Stop ``app`` and drop its PostgreSQL database (if it had one)."""
    app.stop()
    if app.backend == "postgresql":
        psql(f'DROP DATABASE IF EXISTS "{app.database}" WITH (FORCE)')
