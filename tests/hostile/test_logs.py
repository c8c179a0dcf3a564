"""The logs, as a stranger's input or a careless config would test them.

Short and common-word secrets (``JWT_SECRET=short``, ``ADMIN_PASSWORD=Administrator``)
never garble a message; secrets of a realistic shape never reach a line, wherever they
are (a field, text, a URL, a list or dict under a secret key, an exception's message and
traceback); a 1 MB value gives a line of a few KB, scrubbed in linear time.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runner
from assemble_auth._jwt import problems
from assemble_logging import _logger
from tests.plugins._apps import app

# As a careless config sets them (in ${env...}): words any message may contain.
COMMON = {
    "JWT_SECRET": "short",
    "ADMIN_PASSWORD": "Administrator",
    "DB_PASSWORD": "password",
    "API_TOKEN": "required",
}
# As a careful one sets them, and as a stranger sends them.
REAL = {
    "JWT_SECRET": "k8Vq2-jwt-signing-secret-0f3a9c1e5b7d4e2a",
    "ADMIN_PASSWORD": "correct-horse-battery-9",
    "DB_PASSWORD": "Pg-s3cret/2026?#x",
    "API_TOKEN": "tok_live_4f9a2c81d7e6",
}
STRANGER = "LEAKPW3-stranger-pw"  # a password in a request: known to no config
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbm4ifQ."
    "Qk9HVVNfU0lHTkFUVVJFX0ZPUl9URVNUU19PTkxZXzEyMzQ"
)
FORMATS = ["json", "text"]


@pytest.fixture
def log_to() -> Iterator[Any]:
    """``open(fmt, secrets) -> (logger, stream)``: a logger of the plugin on a stream."""
    opened: list[logging.Logger] = []

    def open_(fmt: str, secrets: dict[str, str]) -> tuple[logging.Logger, io.StringIO]:
        stream = io.StringIO()
        name = f"hostile.logs.{fmt}.{len(opened)}"
        logger = _logger.open_logger(name, {"format": fmt}, secrets.values(), stream)
        opened.append(logger)
        return logger, stream

    yield open_
    for logger in opened:
        _logger.close_logger(logger)


def validation_messages() -> list[str]:
    """The runtime's own 422 messages for a password field, as the log shows them."""
    schema = runner.Schema(
        {
            "type": "object",
            "properties": {
                "email": {"type": "string"},
                "password": {"type": "string", "minLength": 8},
                "token": {"type": "string"},
                "api_key": {"enum": ["a", "b"]},
            },
            "required": ["email", "password"],
        }
    )
    found = []
    for given in (
        {},
        {"email": "a", "password": "short"},
        {"email": "a", "password": ["x"], "token": 7},
        {"email": "a", "password": {"a": 1}, "api_key": "required"},
    ):
        with pytest.raises(runner.errors.ValidationError) as caught:
            schema.check(given, "input", "register")
        found.append(f"task register failed after 0.4 ms: ValidationError: {caught.value.message}")
    with pytest.raises(runner.errors.ValidationError) as caught:
        runner.check_boundary({"password": "a\x00b", "name": "\ud800"}, owner="register")
    found.append(caught.value.message)
    return found


def jwt_secret_error() -> list[str]:
    (problem,) = problems({"secret": "short", "algorithms": ["HS256"]})
    return [problem.message, problem.hint]


MESSAGES = [
    *validation_messages(),
    *jwt_secret_error(),
    "users-api listening on http://0.0.0.0:8080 (data in /srv/short/data; admin "
    "admin@example.com, password from ADMIN_PASSWORD)",
    "Uvicorn running on http://127.0.0.1:8080 (Press CTRL+C to quit)",
    "login as Administrator refused: wrong password (the password is required)",
    "falling back to basic auth: missing Bearer token",
    "sql.engine ready: postgresql+asyncpg://app@db:5432/app?application_name=api",
    "tunnel.nats serving on nats://127.0.0.1:4222 as billing (subject prefix required.)",
]


def test_the_realistic_messages_are_what_the_runtime_writes() -> None:
    text = "\n".join(MESSAGES)
    for expected in (
        "password: is required",
        "password: is too short",
        "password: is not of type 'string'",
        "token: is not of type 'string'",
        "api_key: is not one of",
        "password: holds a NUL character",
        "too short for HS256",
        "secret: ${env.JWT_SECRET}",
    ):
        assert expected in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_short_and_common_word_secrets_never_garble_a_message(fmt: str, log_to: Any) -> None:
    logger, stream = log_to(fmt, COMMON)
    for message in MESSAGES:
        logger.warning(message)
    got = stream.getvalue().splitlines()
    if fmt == "json":
        assert [json.loads(line)["message"] for line in got] == MESSAGES
    else:
        assert [line.split(": ", 1)[1] for line in got] == MESSAGES


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_traceback_keeps_its_paths(fmt: str, log_to: Any, tmp_path: Path) -> None:
    folder = tmp_path / "short" / "notes_app"
    folder.mkdir(parents=True)
    (folder / "hl_tasks.py").write_text("def register(input):\n    raise KeyError('email')\n")
    sys.path.insert(0, str(folder))
    try:
        import hl_tasks  # type: ignore[import-not-found]

        logger, stream = log_to(fmt, COMMON)
        try:
            hl_tasks.register({})
        except KeyError:
            logger.exception("task register failed")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("hl_tasks", None)
    line = stream.getvalue()
    text = json.loads(line)["exception"] if fmt == "json" else line
    assert f'File "{folder / "hl_tasks.py"}", line 2, in register' in text
    assert "***" not in text


def leaky_records(logger: logging.Logger) -> None:
    """Every place a secret of REAL (or a stranger's password) can sit in a record."""
    db, token, admin = REAL["DB_PASSWORD"], REAL["API_TOKEN"], REAL["ADMIN_PASSWORD"]
    logger.info("login", extra={"password": STRANGER, "user": "ann"})
    logger.info("login password=%s as %s", STRANGER, admin)
    logger.info("calling the api with %s", token)
    logger.info("headers %s", {"Authorization": f"Bearer {JWT}", "accept": "json"})
    logger.info("forwarding Authorization: Bearer %s", JWT)
    url = f"postgresql://app:{db}@db:5432/app?sslpassword={db}&application_name=api"
    logger.info("connecting to %s", url)
    logger.info("nats nats://%s@h1:4222,nats://app:%s@h2:4222 up", token, db)
    logger.info("GET /cb?access_token=%s&page=2", STRANGER)
    logger.info("body %s", {"password": [STRANGER, "x"], "profile": {"token": {"a": token}}})
    logger.info("body %s", json.dumps({"password": {"a": [STRANGER]}, "n": 1}))
    given = {"password": [STRANGER], "auth": {"x": STRANGER}, "items": [{"api_key": admin}]}
    logger.info("input", extra={"input": given, "note": f"admin is {admin}"})
    logger.info("params ('ann', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$%s')", STRANGER)
    try:
        try:
            raise ConnectionError(f"refused postgresql://app:{db}@db/app (token {token})")
        except ConnectionError as exc:
            raise RuntimeError(f"login failed: password={STRANGER!r}, jwt {JWT}") from exc
    except RuntimeError:
        logger.exception("register failed", extra={"cookie": ["sid=" + STRANGER]})


@pytest.mark.parametrize("fmt", FORMATS)
def test_secrets_of_a_realistic_shape_never_reach_a_line(fmt: str, log_to: Any) -> None:
    logger, stream = log_to(fmt, REAL)
    leaky_records(logger)
    text = stream.getvalue()
    secrets = [*REAL.values(), STRANGER, JWT, *JWT.split(".")[1:], "c2FsdHNhbHQ"]
    assert [s for s in secrets if s in text] == []
    for kept in ("login password=***", "application_name=api", "Traceback", "ConnectionError"):
        assert kept in text
    assert "nats://***@h1:4222,nats://app:***@h2:4222 up" in text


@pytest.mark.anyio
async def test_a_strangers_password_through_an_app_is_masked_and_its_422_is_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = app(
        tmp_path,
        """
        assemble: 1
        id: hostile
        config: {admin: "${env.ADMIN_PASSWORD}", jwt: "${env.JWT_SECRET}"}
        resources:
          keep: {init: "hl_app:keep", config: {admin: "${config.admin}"}}
        middleware:
          log_all: {use: logging.tasks, everywhere: true, config: {include_input: true}}
        tasks:
          register:
            run: hl_app:register
            dependencies: {keep: keep}
            input_schema:
              type: object
              properties:
                email: {type: string}
                password: {type: string, minLength: 8}
              required: [email, password]
        """,
        env=COMMON,
        hl_app="""
        def keep(config):
            return config

        def register(input, keep):
            raise RuntimeError(f"could not store {input}")
        """,
    )
    async with runner.run(definition) as rt:
        for given in (
            {"email": "a@example.com"},
            {"email": "a@example.com", "password": [STRANGER]},
            {"email": "a@example.com", "password": {"x": STRANGER}},
            {"email": "a@example.com", "password": "short"},
        ):
            with pytest.raises(runner.errors.ValidationError):
                await rt.run_task("register", given)
        with pytest.raises(RuntimeError):
            await rt.run_task("register", {"email": "a@example.com", "password": STRANGER})
    err = capsys.readouterr().err
    assert STRANGER not in err
    errors = [json.loads(x)["message"] for x in err.splitlines() if '"task.error"' in x]
    assert [m.split("'register': ")[-1] for m in errors[:4]] == [
        "password: is required",
        "password: is not of type 'string'",
        "password: is not of type 'string'",
        "password: is too short",
    ]
    assert '"input": {"email": "a@example.com", "password": "***"}' in err
    assert "could not store {'email': 'a@example.com', 'password': '***'}" in err


# ---------------------------------------------------------------- bounded lines

MB = 1_000_000


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "shape",
    ["string", "list of strings", "list of numbers", "dict", "nested", "message", "bytes"],
)
def test_a_1mb_value_gives_a_line_of_a_few_kb(fmt: str, shape: str, log_to: Any) -> None:
    logger, stream = log_to(fmt, REAL)
    big: Any = {
        "string": "A" * MB,
        "list of strings": ["B" * 1000] * 1000,
        "list of numbers": list(range(MB // 8)),
        "dict": {f"k{i}": "C" * 100 for i in range(10_000)},
        "nested": [[["D" * 1000] * 30] * 30] * 2,
        "message": None,
        "bytes": b"E" * MB,
    }[shape]
    if big is None:
        logger.warning("value %s", "F" * MB)
    else:
        logger.warning("a field", extra={"body": big})
    line = stream.getvalue()
    assert line.count("\n") == 1 and len(line.encode()) < 8_000


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_1mb_exception_gives_a_bounded_traceback(fmt: str, log_to: Any) -> None:
    logger, stream = log_to(fmt, REAL)
    try:
        raise ValueError("G" * MB + REAL["API_TOKEN"])
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    assert len(text.encode()) < 2 * _logger.MAX_EXCEPTION and "Traceback" in text
    assert "more characters)" in text


# Texts that make a careless pattern backtrack: each must be scrubbed in about the time
# of one pass, never in time that grows with the square of its length.
HOSTILE_TEXTS = {
    "one word": "a" * MB,
    "secret words glued": "token" * (MB // 5),
    "keys": "password=x " * (MB // 11),
    "JWT starts": "eyJ" * (MB // 3),
    "JWT starts after _": "_eyJa" * (MB // 5),
    "scheme-like run": "a" * MB + "://h",
    "URLs": "http://u:p@h/?token=1 " * (MB // 22),
    "commas before schemes": ",aaaa" * (MB // 5),
    "open brackets": "password=" + "[" * MB,
    "open quotes": "password='\\'" * (MB // 12),
    "bearer words": "bearer " * (MB // 7),
    "hashes": "$argon2id$" * (MB // 10),
    "private key": "-----BEGIN RSA PRIVATE KEY-----" + "A" * MB,
}


@pytest.mark.parametrize("name", list(HOSTILE_TEXTS))
def test_scrubbing_a_hostile_1mb_text_takes_linear_time(name: str) -> None:
    scrubber = _logger.Scrubber(REAL.values())
    text = HOSTILE_TEXTS[name]
    start = time.perf_counter()
    shown = scrubber.text(text, _logger.MAX_EXCEPTION)
    scrubber.text(text)
    assert time.perf_counter() - start < 1.0  # quadratic would take minutes
    assert len(shown) < _logger.MAX_EXCEPTION + 100
