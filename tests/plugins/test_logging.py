"""The ``logging`` plugin: the ``logger`` resource and the ``logging.tasks`` middleware."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

import runner
from assemble_logging import _logger, _tasks
from assemble_logging._logger import Handler

from ._apps import app, problems


def ours(logger: logging.Logger) -> list[logging.Handler]:
    """The logger plugin's handlers (pytest >= 9.2 adds its capture handler to
    non-propagating loggers too)."""
    return [h for h in logger.handlers if isinstance(h, Handler)]


pytestmark = pytest.mark.anyio

# A well-formed JWT (HS256, {"sub": "ann"}): what an `Authorization: Bearer` header carries.
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbm4ifQ."
    "Qk9HVVNfU0lHTkFUVVJFX0ZPUl9URVNUU19PTkxZXzEyMzQ"
)
ENV_SECRET = "s3cr3t-value-123"
REQUEST = runner.Request(id="req-1", headers={"authorization": f"Bearer {JWT}"}, transport="test")


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The stderr lines written so far; nothing may reach stdout."""
    out, err = capsys.readouterr()
    assert out == ""
    return err.splitlines()


def records(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every stderr line, parsed: each one must be a JSON object."""
    parsed = [json.loads(line) for line in lines(capsys)]
    assert all(isinstance(r, dict) for r in parsed)
    return parsed


def only(recs: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in recs if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, recs)
    return found[0]


BASIC = """
    assemble: 1
    id: logdemo
    resources:
      svc:
        init: lt_basic:make_svc
        dependencies: {log: logger}
    middleware:
      log_all: {use: logging.tasks, everywhere: true}
    tasks:
      slow:
        run: lt_basic:slow
        dependencies: {log: logger, svc: svc}
      in_thread:
        run: lt_basic:in_thread
        dependencies: {log: logger}
"""
BASIC_PY = """
    import anyio

    def make_svc(config, log):
        log.info("svc ready")
        return "svc"

    async def slow(input, log, svc):
        await anyio.sleep(0.05)
        log.info("working", extra={"step": 1, "obj": object()})
        return {"ok": True}

    def in_thread(input, log):  # a sync task: runs in a worker thread
        log.info("in a thread")
        return 1
"""


async def test_records_are_json_lines_with_ids_and_duration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = app(tmp_path, BASIC, lt_basic=BASIC_PY)
    before = datetime.now(UTC)
    async with runner.run(definition) as rt:
        with runner.current_request.provide(REQUEST):
            assert await rt.run_task("slow", {"n": 1}) == {"ok": True}
            assert await rt.run_task("in_thread", None) == 1
        await rt.run_task("in_thread", None)  # outside any request
    recs = records(capsys)

    assert {r["logger"] for r in recs} == {"assemble.logdemo.logger"}
    for r in recs:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"])
        when = datetime.fromisoformat(r["time"])
        assert when.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= when <= datetime.now(UTC)
    ready = only(recs, message="svc ready")
    assert ready["level"] == "info" and "task" not in ready and "request_id" not in ready

    start = only(recs, event="task.start", task="slow")
    assert start["request_id"] == "req-1" and start["level"] == "info"
    assert start["message"] == "task slow started" and "input" not in start
    working = only(recs, message="working")
    assert working["task"] == "slow" and working["request_id"] == "req-1"
    assert working["step"] == 1 and working["obj"].startswith("<object object")
    done = only(recs, event="task.complete", task="slow")
    assert done["request_id"] == "req-1"
    assert 40 <= done["duration_ms"] < 5000  # the task sleeps 50 ms
    order = [r.get("event", r["message"]) for r in recs if r.get("task") == "slow"]
    assert order == ["task.start", "working", "task.complete"]

    in_thread = [r for r in recs if r["message"] == "in a thread"]
    assert [r.get("request_id") for r in in_thread] == ["req-1", None]
    assert [r["task"] for r in in_thread] == ["in_thread", "in_thread"]
    assert isinstance(only(recs, event="task.complete", task="in_thread", request_id="req-1"), dict)


SECRETS = """
    assemble: 1
    id: secrets
    config:
      api_key: ${env.API_KEY}
    resources:
      upstream:
        init: lt_secrets:make_upstream
        config: {api_key: "${config.api_key}", url: "https://api.example.com"}
      logger: {use: logger, config: {format: FORMAT}}
    middleware:
      log_all: {use: logging.tasks, everywhere: true, config: {include_input: true}}
    tasks:
      login:
        run: lt_secrets:login
        dependencies: {log: logger, upstream: upstream}
"""
SECRETS_PY = f"""
    import runner

    JWT = {JWT!r}

    def make_upstream(config):
        return config

    async def login(input, log, upstream):
        key = upstream["api_key"]
        log.info("login password=%s", input["password"])
        log.info("login", extra={{"password": input["password"], "user": input["user"]}})
        log.info("headers %s", {{"Authorization": "Bearer " + JWT, "accept": "json"}})
        log.info("forwarding Authorization: Bearer " + JWT)
        log.info(f"token {{JWT}}")
        log.info(f"calling {{upstream['url']}} with {{key}}")
        log.getChild("db").info("dsn postgresql://ann:%s@db/app?password=%s", key, key)
        auth = runner.current_request.use().header("authorization")
        log.warning("request", extra={{"headers": {{"authorization": auth}}, "sent": [auth]}})
        raise RuntimeError(f"upstream refused key {{key}}")
"""


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_secrets_never_reach_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    definition = app(
        tmp_path,
        SECRETS.replace("FORMAT", fmt),
        env={"API_KEY": ENV_SECRET},
        lt_secrets=SECRETS_PY,
    )
    given = {
        "user": "ann",
        "token": "tok-opaque-999",
        "password": "pw-777",
        "profile": {"ApiKey": "k-555", "Set-Cookie": ["sid=c-444"], "city": "Oslo"},
    }
    async with runner.run(definition) as rt:
        assert rt.resource("upstream")["api_key"] == ENV_SECRET  # the app did get it
        with runner.current_request.provide(REQUEST), pytest.raises(RuntimeError):
            await rt.run_task("login", given)
    err = "\n".join(lines(capsys))

    leaked = [
        s
        for s in (ENV_SECRET, JWT, *JWT.split("."), "tok-opaque-999", "pw-777", "k-555", "c-444")
        if s in err
    ]
    assert leaked == []
    # ... while what is not secret is still there, with *** in place of each secret
    for kept in ("login password=***", "ann", "Oslo", "https://api.example.com", "req-1"):
        assert kept in err
    assert "task login started" in err and "upstream refused key ***" in err
    assert "RuntimeError" in err and "Traceback" in err
    if fmt == "json":
        recs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert only(recs, event="task.start")["input"] == {
            "user": "ann",
            "token": "***",
            "password": "***",
            "profile": {"ApiKey": "***", "Set-Cookie": "***", "city": "Oslo"},
        }
        assert only(recs, message="login") | {"time": ""} == {
            "time": "",
            "level": "info",
            "logger": "assemble.secrets.logger",
            "message": "login",
            "password": "***",
            "user": "ann",
            "task": "login",
            "request_id": "req-1",
        }
        assert {r["message"] for r in recs} >= {
            "headers {'Authorization': '***', 'accept': 'json'}",
            "forwarding Authorization: ***",
            "token ***",
            "calling https://api.example.com with ***",
            "dsn postgresql://ann:***@db/app?password=***",
        }
        child = only(recs, logger="assemble.secrets.logger.db")
        assert child["task"] == "login" and child["request_id"] == "req-1"
        request = only(recs, message="request")
        assert request["headers"] == {"authorization": "***"} and request["sent"] == ["Bearer ***"]
    else:
        assert "logger: login password=*** user=ann request_id=req-1 task=login\n" in err


async def test_text_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = BASIC.replace(
        "    resources:\n", "    resources:\n      logger: {use: logger, config: {format: text}}\n"
    )
    definition = app(tmp_path, manifest, lt_basic=BASIC_PY)
    async with runner.run(definition) as rt:
        with runner.current_request.provide(REQUEST):
            await rt.run_task("slow", None)
    got = lines(capsys)
    for line in got:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    time = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    name = "assemble.logdemo.logger"
    assert re.fullmatch(rf"{time} INFO     {name}: svc ready", got[0])
    assert re.fullmatch(
        rf"{time} INFO     {name}: task slow started event=task.start task=slow request_id=req-1",
        got[1],
    )
    assert re.fullmatch(
        rf"{time} INFO     {name}: working step=1 obj=\"<object object at 0x[0-9a-f]+>\" "
        r"request_id=req-1 task=slow",
        got[2],
    )
    assert re.fullmatch(
        rf"{time} INFO     {name}: task slow completed in [0-9.]+ ms event=task.complete "
        r"task=slow request_id=req-1 duration_ms=[0-9.]+",
        got[3],
    )
    assert len(got) == 4


LEVELS = """
    assemble: 1
    id: levels
    resources:
      logger: {use: logger, config: {level: LOGGER_LEVEL}}
    middleware:
      log_all: {use: logging.tasks, everywhere: true, config: {level: TASKS_LEVEL}}
    tasks:
      chatty:
        run: lt_levels:chatty
        dependencies: {log: logger}
"""
LEVELS_PY = """
    def chatty(input, log):
        log.debug("details")
        log.info("progress")
        log.warning("careful")
        log.error("bad")
        log.critical("worse")
"""


@pytest.mark.parametrize(
    ("logger_level", "tasks_level", "expected"),
    [
        ("warning", "info", ["careful", "bad", "worse"]),
        ("error", "critical", ["task.start", "bad", "worse", "task.complete"]),
        (
            "debug",
            "debug",
            ["task.start", "details", "progress", "careful", "bad", "worse", "task.complete"],
        ),
    ],
)
async def test_level_filters(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    logger_level: str,
    tasks_level: str,
    expected: list[str],
) -> None:
    manifest = LEVELS.replace("LOGGER_LEVEL", logger_level).replace("TASKS_LEVEL", tasks_level)
    async with runner.run(app(tmp_path, manifest, lt_levels=LEVELS_PY)) as rt:
        await rt.run_task("chatty", None)
    recs = records(capsys)
    assert [r.get("event", r["message"]) for r in recs] == expected
    for r in recs:
        if "event" in r:
            assert r["level"] == tasks_level


async def test_configured_logger_replaces_the_registered_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = LEVELS.replace("LOGGER_LEVEL", "debug").replace("TASKS_LEVEL", "debug")
    async with runner.run(app(tmp_path, manifest, lt_levels=LEVELS_PY)) as rt:
        logger = rt.resource("logger")
        assert isinstance(logger, logging.Logger)
        assert logger.name == "assemble.levels.logger" and logger.level == logging.DEBUG
        assert len(ours(logger)) == 1
        await rt.run_task("chatty", None)
    recs = records(capsys)
    assert [r["message"] for r in recs].count("details") == 1  # written once, by one logger
    assert only(recs, message="details")["level"] == "debug"

    # without the manifest entry, the registered logger is at info
    manifest = manifest.replace(
        "    resources:\n      logger: {use: logger, config: {level: debug}}\n", ""
    )
    assert "resources" not in manifest
    async with runner.run(app(tmp_path, manifest, lt_levels=LEVELS_PY)) as rt:
        assert rt.resource("logger").level == logging.INFO
        await rt.run_task("chatty", None)
    assert [r.get("event", r["message"]) for r in records(capsys)] == [
        "progress",
        "careful",
        "bad",
        "worse",
    ]


ERRORS = """
    assemble: 1
    id: errs
    middleware:
      log_all: {use: logging.tasks, everywhere: true}
    tasks:
      denied: {run: "lt_errors:denied"}
      broken: {run: "lt_errors:broken"}
      forever: {run: "lt_errors:forever"}
      outage: {run: "lt_errors:outage"}
"""
ERRORS_PY = """
    import anyio
    import runner

    DENIED = runner.errors.Forbidden("not your account")

    async def denied(input):
        raise DENIED

    async def broken(input):
        raise RuntimeError("kaput")

    async def forever(input):
        await anyio.sleep_forever()

    async def outage(input):
        raise runner.errors.ResourceUnavailable("db", detail="refused at 10.9.8.7:5432")
"""


async def test_error_records_carry_code_status_and_duration_and_the_error_propagates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = app(tmp_path, ERRORS, lt_errors=ERRORS_PY)
    lt_errors = sys.modules["lt_errors"]
    async with runner.run(definition) as rt:
        with runner.current_request.provide(REQUEST):
            with pytest.raises(runner.errors.Forbidden) as denied:
                await rt.run_task("denied", None)
            with pytest.raises(RuntimeError, match=r"^kaput$"):
                await rt.run_task("broken", None)
            # 500 ms: a stall between here and the task's start must not eat the 100 ms
            # the cancelled record is checked to have lasted
            with anyio.move_on_after(0.5):
                await rt.run_task("forever", None)
    assert denied.value is lt_errors.DENIED  # re-raised unchanged
    recs = records(capsys)

    error = only(recs, event="task.error", task="denied")
    assert error["level"] == "warning"  # a client error (4xx)
    assert error["error"] == "Forbidden"
    assert error["code"] == "runner.forbidden" and error["http_status"] == 403
    assert error["request_id"] == "req-1" and 0 <= error["duration_ms"] < 5000
    assert error["message"].endswith("Forbidden: not your account")
    assert "exception" not in error

    error = only(recs, event="task.error", task="broken")
    assert error["level"] == "error" and error["error"] == "RuntimeError"
    assert "code" not in error and "http_status" not in error
    assert (
        error["exception"].startswith("Traceback") and "RuntimeError: kaput" in error["exception"]
    )
    assert not [r for r in recs if r.get("event") == "task.complete"]

    cancelled = only(recs, event="task.cancelled", task="forever")
    assert cancelled["level"] == "warning" and 100 <= cancelled["duration_ms"] < 5000


async def test_a_failure_repeated_on_every_call_writes_its_traceback_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An outage (a classified 503) or a bug hit by every request: one line per call, as
    always, but no traceback per call: none for a typed error, one per task and error
    class every 10 s for an unexpected one."""
    definition = app(tmp_path, ERRORS, lt_errors=ERRORS_PY)
    async with runner.run(definition) as rt:
        for _ in range(50):
            with pytest.raises(runner.errors.ResourceUnavailable):
                await rt.run_task("outage", None)
            with pytest.raises(RuntimeError):
                await rt.run_task("broken", None)
    recs = records(capsys)
    outages = [r for r in recs if r.get("event") == "task.error" and r["task"] == "outage"]
    broken = [r for r in recs if r.get("event") == "task.error" and r["task"] == "broken"]
    assert len(outages) == 50 and len(broken) == 50
    assert not any("exception" in r for r in outages)
    assert all(r["code"] == "db.unavailable" and r["level"] == "error" for r in outages)
    assert not any("10.9.8.7" in json.dumps(r) for r in outages)  # the detail: the edge's
    assert [i for i, r in enumerate(broken) if "exception" in r] == [0]


async def test_handlers_are_removed_at_dispose_and_nothing_reaches_the_root_logger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    root_handlers = list(root.handlers)
    definition = app(tmp_path, BASIC, lt_basic=BASIC_PY)
    async with runner.run(definition) as one, runner.run(definition) as two:
        first, second = one.resource("logger"), two.resource("logger")
        # two live runtimes of one app: two loggers, so no record is written twice
        assert first.name == "assemble.logdemo.logger"
        assert second.name == "assemble.logdemo.logger#2"
        for logger in (first, second):
            assert not logger.propagate and len(ours(logger)) == 1
        await one.run_task("in_thread", None)
        assert root.handlers == root_handlers
    assert ours(first) == [] and ours(second) == []
    assert root.handlers == root_handlers
    recs = records(capsys)
    assert [r["logger"] for r in recs if r["message"] == "svc ready"] == [first.name, second.name]
    assert len([r for r in recs if r["message"] == "in a thread"]) == 1

    async with runner.run(definition) as again:  # the name is free again
        assert again.resource("logger").name == "assemble.logdemo.logger"
    capsys.readouterr()


QUIET = """
    assemble: 1
    id: quiet
    resources:
      logger: {use: logger, config: {level: LEVEL}}
    middleware:
      log_all: {use: logging.tasks, everywhere: true, config: {level: debug, include_input: true}}
    tasks:
      echo: {run: "lt_quiet:echo"}
"""
QUIET_PY = """
    class Watched(dict):
        reads = 0

        def items(self):
            Watched.reads += 1
            return super().items()

    def echo(input):
        return len(input)
"""


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_a_disabled_level_costs_no_formatting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    definition = app(tmp_path, QUIET.replace("LEVEL", level), lt_quiet=QUIET_PY)
    lt_quiet = sys.modules["lt_quiet"]

    async with runner.run(definition) as rt:
        assert await rt.run_task("echo", lt_quiet.Watched(a=1, password="x")) == 2
    recs = records(capsys)
    if level == "info":  # logging.tasks logs at debug: below the logger's level
        assert recs == [] and lt_quiet.Watched.reads == 0
    else:
        assert only(recs, event="task.start")["input"] == {"a": 1, "password": "***"}
        assert lt_quiet.Watched.reads == 1


def test_configs_are_checked_against_the_schemas(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: bad
        resources:
          logger: {use: logger, config: {level: loud, format: xml}}
        middleware:
          log_all: {use: logging.tasks, config: {include_input: yes please, colour: red}}
        """,
    )
    assert sorted((code, line) for code, line, _, _ in found) == [
        ("ASM603", 4),
        ("ASM603", 4),
        ("ASM603", 6),
        ("ASM603", 6),
    ]
    text = "\n".join(message for *_, message in found)
    assert "'loud'" in text and "'xml'" in text and "'colour'" in text


OWN = """
    assemble: 1
    id: own
    resources:
      plain: {init: "lt_own:plain_logger"}
    middleware:
      log_all:
        use: logging.tasks
        everywhere: true
        dependencies: {logger: plain}
        config: {include_input: true}
    tasks:
      echo: {run: "lt_own:echo"}
"""
OWN_PY = """
    import logging

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__()
            self.records = []

        def emit(self, record):
            self.records.append(record)

    def plain_logger(config):
        logger = logging.getLogger("lt_own.plain")
        logger.propagate, handler = False, Collect()
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        yield logger
        logger.removeHandler(handler)

    def echo(input):
        return input
"""


async def test_logging_tasks_redacts_the_input_itself_for_any_logger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the middleware's logger can be any stdlib logger (here one without our handler)
    async with runner.run(app(tmp_path, OWN, lt_own=OWN_PY)) as rt:
        handler = rt.resource("plain").handlers[0]
        with runner.current_request.provide(REQUEST):
            await rt.run_task("echo", {"user": "ann", "password": "pw-777", "n": [{"token": "t"}]})
    start, done = handler.records
    assert start.event == "task.start" and done.event == "task.complete"
    # built without findCaller's frame walk, they name the middleware as their caller
    for record in (start, done):
        assert record.name == "lt_own.plain" and record.levelno == logging.INFO
        assert Path(record.pathname).name == "_tasks.py" and record.module == "_tasks"
        assert record.funcName == "log_tasks" and record.lineno > 0
        assert record.exc_info is None and record.stack_info is None
        assert abs(record.created - time.time()) < 60
    assert start.getMessage() == "task echo started"
    assert re.fullmatch(r"task echo completed in \d+\.\d ms", done.getMessage())
    assert start.input == {"user": "ann", "password": "***", "n": [{"token": "***"}]}
    assert start.task == done.task == "echo"
    assert start.request_id == done.request_id == "req-1"
    assert not hasattr(done, "input")
    assert lines(capsys) == []  # the app's own `logger` was not used


async def test_plugin_records_go_through_the_app_logger_scrubbed_and_not_to_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk_live_abc123def456"
    a = app(
        tmp_path,
        """
        assemble: 1
        id: adopt
        tasks:
          flaky:
            run: lt_adopt:flaky
            middleware: [{use: retry, config: {attempts: 2, delay: 1ms}}]
        """,
        lt_adopt=f"""
        CALLS = []

        async def flaky(input):
            CALLS.append(1)
            if len(CALLS) == 1:
                raise ConnectionError("refused with access_token={secret}")
            return "ok"
        """,
    )
    seen: list[logging.LogRecord] = []

    class Root(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    root, handler = logging.getLogger(), Root()
    root.addHandler(handler)
    try:
        async with runner.run(a) as rt:
            assert await rt.run_task("flaky", None) == "ok"
    finally:
        root.removeHandler(handler)
    assert [r for r in seen if r.name.startswith("assemble")] == []
    err = capsys.readouterr().err
    retried = [json.loads(x) for x in err.splitlines() if "assemble.resilience.retry" in x]
    assert len(retried) == 1 and "attempt 1 of 2" in retried[0]["message"]
    assert secret not in err and "access_token=***" in err
    assert logging.getLogger("assemble").propagate  # restored at dispose


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connecting to postgresql://app:hunter2@db/app", "hunter2"),
        ('{"auth": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz"),
        ("key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", "MIIEvQ"),
        ("token_eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", "eyJzdWIiOiJhIn0"),
        ("passphrase=open-sesame", "open-sesame"),
        ("{'credentials': 'c-123'}", "c-123"),
    ],
)
def test_the_scrubber_removes_credentials_in_their_common_shapes(text: str, secret: str) -> None:
    from assemble_logging._logger import Scrubber

    assert secret not in Scrubber().text(text)


def test_the_scrubber_leaves_ordinary_text_alone() -> None:
    from assemble_logging._logger import Scrubber

    text = "author: Ada; see http://example.com/docs; oauth flow ok"
    assert Scrubber().text(text) == text


# ---------------------------------------------------------------- scrubbing: whole values
#
# Each case: the text, what the logger wrote before values were masked whole and on token
# boundaries (garbled, or partly masked), and what it writes now.

COMMON_WORDS = ["short", "password", "required", "Administrator"]  # as ${env...} values

GARBLED = [
    (
        [],
        "invalid input for 'register': password: is required",
        "invalid input for 'register': password: *** required",
        "invalid input for 'register': password: is required",
    ),
    (
        [],
        "invalid input for 'register': password: is too short",
        "invalid input for 'register': password: *** too short",
        "invalid input for 'register': password: is too short",
    ),
    (
        [],
        "invalid input for 'login': token: is not of type 'string'",
        "invalid input for 'login': token: *** not of type 'string'",
        "invalid input for 'login': token: is not of type 'string'",
    ),
    (
        [],
        "invalid input for 'x': keys.0.api_key: should be non-empty",
        "invalid input for 'x': keys.0.api_key: *** be non-empty",
        "invalid input for 'x': keys.0.api_key: should be non-empty",
    ),
    (
        [],
        "invalid input for 'x': password: holds a NUL character (U+0000)",
        "invalid input for 'x': password: *** a NUL character (U+0000)",
        "invalid input for 'x': password: holds a NUL character (U+0000)",
    ),
    (
        [],
        "falling back to basic auth",
        "falling back to basic ***",
        "falling back to basic auth",
    ),
    ([], "missing Bearer token", "missing Bearer ***", "missing Bearer token"),
    (
        COMMON_WORDS,
        "the secret is shorter than 32 bytes (UTF-8), too short for HS256",
        "the secret is ***er than 32 bytes (UTF-8), too *** for HS256",
        "the secret is shorter than 32 bytes (UTF-8), too short for HS256",
    ),
    (
        COMMON_WORDS,
        "login as Administrator failed: wrong password",
        "login as *** failed: wrong ***",
        "login as Administrator failed: wrong password",
    ),
    (
        COMMON_WORDS,
        'File "/srv/short/notes_app/tasks.py", line 3, in register',
        'File "/srv/***/notes_app/tasks.py", line 3, in register',
        'File "/srv/short/notes_app/tasks.py", line 3, in register',
    ),
    (
        COMMON_WORDS,
        "invalid input for 'register': password: is required",
        "invalid input for 'register': ***: is ***",
        "invalid input for 'register': password: is required",
    ),
    # partly masked before: the rest of a list, a dict, a bytes or an object leaked
    ([], "password=['LEAKPW3']", "password=***'LEAKPW3']", "password=***"),
    ([], "password=['x', 'LEAKPW3'] ok", "password=***'x', 'LEAKPW3'] ok", "password=*** ok"),
    (
        [],
        "{'password': ['LEAKPW3'], 'name': 'ann'}",
        "{'password': ***'LEAKPW3'], 'name': 'ann'}",
        "{'password': ***, 'name': 'ann'}",
    ),
    (
        [],
        '{"password": {"a": "LEAKPW3"}, "name": "ann"}',
        '{"password": ***"a": "LEAKPW3"}, "name": "ann"}',
        '{"password": ***, "name": "ann"}',
    ),
    ([], "password=Secret('LEAKPW3') ok", "password=***'LEAKPW3') ok", "password=*** ok"),
    ([], "{'password': b'LEAKPW3'}", "{'password': ***'LEAKPW3'}", "{'password': b'***'}"),
    # not masked before: credentials in a URL's query, a lone user (a token), hashes
    (
        [],
        "dsn postgresql://app@db/app?key=LEAKPW3&application_name=api",
        "dsn postgresql://app@db/app?key=LEAKPW3&application_name=api",
        "dsn postgresql://app@db/app?key=***&application_name=api",
    ),
    (
        [],
        "GET https://h/x?sig=LEAKPW3&page=2 (see https://h/doc).",
        "GET https://h/x?sig=LEAKPW3&page=2 (see https://h/doc).",
        "GET https://h/x?sig=***&page=2 (see https://h/doc).",
    ),
    (
        [],
        "params ('ann', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g')",
        "params ('ann', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g')",
        "params ('ann', '***')",
    ),
]


@pytest.mark.parametrize(("secrets", "text", "before", "now"), GARBLED)
def test_scrubbing_neither_garbles_messages_nor_leaves_part_of_a_value(
    secrets: list[str], text: str, before: str, now: str
) -> None:
    assert before != now
    assert _logger.Scrubber(secrets).text(text) == now


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("password=x", "password=***"),
        ("passwd = hunter2; next", "passwd = ***; next"),
        ('"token": "x"', '"token": "***"'),
        ("{'api_key': 'x'}", "{'api_key': '***'}"),
        ("private_key=abc", "private_key=***"),
        ("password: hunter2", "password: ***"),
        ("password: 'is here'", "password: '***'"),
        ("Authorization: Bearer x", "Authorization: ***"),
        ("authorization: is required", "authorization: is required"),
        ("Cookie: a=1; b=2", "Cookie: ***"),
        ("Set-Cookie: sid=1; Path=/\nnext line", "Set-Cookie: ***\nnext line"),
        ("sent Bearer abc123 and Basic dXNlcjpwYXNz", "sent Bearer *** and Basic ***"),
        (f"got {JWT} back", "got *** back"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----", "***"),
        ("postgresql://app:hunter2@db/app", "postgresql://app:***@db/app"),
        ("password: 'unclosed\nnext line", "password: '***\nnext line"),
        ("password=[1, 2\n3]", "password=***"),
        ("hash $2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "hash ***"),
    ],
)
def test_credentials_in_text_are_masked(text: str, shown: str) -> None:
    assert _logger.Scrubber().text(text) == shown


def test_any_value_under_a_secret_named_key_is_masked_whatever_its_type() -> None:
    formatter = _logger.JsonFormatter(_logger.Scrubber())
    fields = {
        "password": ["LEAK1", "LEAK2"],
        "auth": {"user": "ann", "pass": "LEAK3"},
        "body": {"token": [1, 2], "api_key": {"a": "LEAK4"}, "n": 1},
        "items": [{"secret": ("LEAK5",)}, {"cookie": None}],
    }
    line = formatter.line(0.0, "INFO", "x", "m", fields)
    assert "LEAK" not in line
    got = json.loads(line)
    assert got["password"] == got["auth"] == "***"
    assert got["body"] == {"token": "***", "api_key": "***", "n": 1}
    assert got["items"] == [{"secret": "***"}, {"cookie": "***"}]


# ---------------------------------------------------------------- bounded lines


def test_long_texts_are_cut_with_the_count_of_what_was_left_out() -> None:
    scrubber = _logger.Scrubber()
    long = "x" * 5_000
    assert scrubber.text(long) == "x" * 2_000 + "… (3,000 more characters)"
    assert scrubber.text(long, 4_000) == "x" * 4_000 + "… (1,000 more characters)"
    assert scrubber.text("x" * 2_000) == "x" * 2_000


def test_fields_lists_and_dicts_are_bounded() -> None:
    scrubber = _logger.Scrubber()
    assert scrubber.value(list(range(250))) == [*range(100), "… (150 more items)"]
    mapping = scrubber.value({f"k{i}": i for i in range(101)})
    assert len(mapping) == 101 and mapping["…"] == "(1 more keys)"
    nested = scrubber.value([["y" * 3_000] * 5] * 5)
    assert len(json.dumps(nested)) < _logger.MAX_FIELD + 2 * _logger.MAX_TEXT
    assert scrubber.value({1, 2}) in ([1, 2], [2, 1])
    assert _logger.redact_keys(list(range(150)))[-1] == "… (50 more items)"
    assert _logger.redact_keys({f"k{i}": i for i in range(102)})["…"] == "(2 more keys)"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_huge_record_gives_a_short_line(fmt: str) -> None:
    import io

    stream = io.StringIO()
    logger = _fresh(f"lt_bounded.{fmt}", fmt, stream)
    huge = "A" * 1_000_000
    try:
        raise ValueError(huge)
    except ValueError:
        logger.exception("bad %s", huge, extra={"field": huge, "items": [huge] * 1000})
    finally:
        _logger.close_logger(logger)
    text = stream.getvalue()
    assert len(text.encode()) < 2 * _logger.MAX_EXCEPTION
    assert "… (998,000 more characters)" in text and "Traceback" in text


def test_a_known_secret_cut_by_the_scrubbed_window_is_never_half_shown() -> None:
    secret = "Zq9-known-secret-value-4242"
    scrubber = _logger.Scrubber([secret])
    # masking shrinks the start, so the window's end (twice the limit) comes close
    start = "password=" + "x" * 150 + " "
    text = start + "a" * (200 - len(start) - 6) + " " + secret + " tail " + "z" * 1_000
    shown = scrubber.text(text, 100)
    assert "Zq9" not in shown and shown.startswith("password=*** aaa")
    assert shown.endswith("more characters)")


# ---------------------------------------------------------------- the fast paths
#
# logging.tasks writes its records straight from their fields when only the plugin's
# handler could see them (no LogRecord, no findCaller), and otherwise builds the record
# with makeRecord + handle. Both must write what `logger.log(...)` writes.


TASK = runner.Task("get_user", run=lambda input: input)


async def _echo(input: Any) -> Any:
    return input


async def _refuse(input: Any) -> Any:
    raise runner.errors.Forbidden("not yours")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _fresh(name: str, fmt: str, stream: Any, level: str = "info") -> logging.Logger:
    logger = _logger.open_logger(name, {"format": fmt, "level": level}, [ENV_SECRET], stream)
    for h in logger.handlers[:]:
        if not isinstance(h, Handler):  # pytest's capture handler, where it adds one
            logger.removeHandler(h)
    return logger


def _no_find_caller(logger: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    walks: list[int] = []

    def find_caller(*args: Any, **kwargs: Any) -> Any:
        walks.append(1)
        raise ValueError("findCaller called")  # logging catches ValueError from it

    monkeypatch.setattr(logger, "findCaller", find_caller)
    return walks


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize("request_id", ["req-1", 7])
async def test_the_direct_path_writes_what_the_record_path_writes(
    fmt: str, request_id: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    given = {"user": "ann", "token": JWT, "note": f"key {ENV_SECRET}", "n": [1.5, None, True]}
    out: dict[str, list[str]] = {}
    for way in ("direct", "record"):
        stream = io.StringIO()
        logger = _fresh(f"lt_paths.{fmt}.{request_id}.{way}", fmt, stream)
        walks = _no_find_caller(logger, monkeypatch)
        if way == "record":  # a filter on the logger could change records: no shortcut
            logger.addFilter(lambda record: True)
        direct = _logger.log_fields(logger, logging.INFO, "x %s", ("y",), {"event": "probe"})
        assert direct is (way == "direct")
        stream.seek(0)
        stream.truncate()
        middleware = _tasks.make_log_tasks({"include_input": True})
        with runner.current_request.provide(runner.Request(id=request_id, transport="test")):
            await middleware(runner.TaskCall(TASK, given, _echo), None, logger)
            with pytest.raises(runner.errors.Forbidden):
                await middleware(runner.TaskCall(TASK, given, _refuse), None, logger)
        _logger.close_logger(logger)
        assert walks == []
        out[way] = stream.getvalue().splitlines()

    time_ = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    duration = r"\d+\.\d+"

    def same(line: str) -> str:  # what may differ: the time, the durations, the name
        line = re.sub(time_, "T", line)
        line = re.sub(r"\.(direct|record)\b", ".L", line)
        return re.sub(duration, "D", line)

    assert [same(x) for x in out["direct"]] == [same(x) for x in out["record"]]
    assert len(out["direct"]) == 4
    text = "\n".join(out["direct"])
    assert ENV_SECRET not in text and JWT.split(".")[1] not in text
    if fmt == "json":
        start, done, _, error = (json.loads(x) for x in out["direct"])
        assert list(start) == ["time", "level", "logger", "message", "event", "task"] + (
            ["request_id", "input"] if request_id == "req-1" else ["input", "request_id"]
        )
        assert start["request_id"] == request_id and start["task"] == "get_user"
        assert start["input"] == {
            "user": "ann",
            "token": "***",
            "note": "key ***",
            "n": [1.5, None, True],
        }
        assert done["event"] == "task.complete" and isinstance(done["duration_ms"], float)
        assert "input" not in done and done["request_id"] == request_id
        assert error["level"] == "warning" and error["http_status"] == 403
        assert error["request_id"] == request_id and "exception" not in error
    else:
        assert f" task=get_user request_id={request_id} " in out["direct"][0] or (
            out["direct"][0].endswith(f" request_id={request_id}")
        )


async def test_other_handlers_still_get_the_records_with_their_fields() -> None:
    import io

    stream = io.StringIO()
    logger = _fresh("lt_paths.shared", "json", stream)
    collect = Collect()
    logger.addHandler(collect)  # as pytest >= 9.2 does: now a record must be built
    try:
        middleware = _tasks.make_log_tasks({})
        with runner.current_request.provide(REQUEST):
            await middleware(runner.TaskCall(TASK, None, _echo), None, logger)
    finally:
        logger.removeHandler(collect)
        _logger.close_logger(logger)
    start, done = collect.records
    fields = ("event", "task", "request_id")
    assert [getattr(start, f) for f in fields] == ["task.start", "get_user", "req-1"]
    assert done.__dict__["event"] == "task.complete" and done.funcName == "log_tasks"
    assert [json.loads(x)["event"] for x in stream.getvalue().splitlines()] == [
        "task.start",
        "task.complete",
    ]


@pytest.mark.parametrize(
    "change",
    ["disabled", "propagate", "level", "handler filter", "formatter", "record factory"],
)
def test_the_direct_path_steps_aside_when_a_record_could_be_seen_or_changed(
    change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    stream = io.StringIO()
    logger = _fresh(f"lt_paths.aside.{change}", "json", stream)
    handler = ours(logger)[0]
    assert _logger.log_fields(logger, logging.INFO, "m", (), {"a": 1})
    if change == "disabled":
        monkeypatch.setattr(logger, "disabled", True)
    elif change == "propagate":
        monkeypatch.setattr(logger, "propagate", True)
    elif change == "level":
        handler.setLevel(logging.ERROR)
    elif change == "handler filter":
        handler.addFilter(lambda record: True)
    elif change == "formatter":
        handler.setFormatter(logging.Formatter())
    else:
        monkeypatch.setattr(logging, "_logRecordFactory", type("R", (logging.LogRecord,), {}))
    try:
        assert not _logger.log_fields(logger, logging.INFO, "m", (), {"a": 1})
    finally:
        _logger.close_logger(logger)
    assert len(stream.getvalue().splitlines()) == 1


def test_a_bad_direct_record_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    stream = io.StringIO()
    logger = _fresh("lt_paths.bad", "json", stream)
    try:
        assert _logger.log_fields(logger, logging.INFO, "n=%d", ("x",), {"a": 1})
        assert not _logger.log_fields(logger, logging.INFO, "m", (), {"name": "x"})
        assert not _logger.log_fields(logger, logging.INFO, "%(a)s", ({"a": 1},), {})
    finally:
        _logger.close_logger(logger)
    assert stream.getvalue() == ""
    assert "--- Logging error ---" in capsys.readouterr().err


def _iso(created: float) -> str:
    when = datetime.fromtimestamp(created, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_the_clock_writes_what_datetime_writes_and_rolls_over_each_second() -> None:
    import random

    clock = _logger.Clock()
    rng = random.Random(7)
    end_of_2026 = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    samples = [rng.uniform(0, 4e9) for _ in range(2000)]
    # in order across second, minute, day and year boundaries: the cached second rolls
    for base in (end_of_2026, 1_700_000_000.0, 0.0):
        for offset in (-1.0, -0.5, -0.0015, -0.001, -0.0005, -0.0000006, -0.0000004, 0.0):
            samples.append(base + offset)
        samples += [base + 0.0004, base + 0.001, base + 0.9994, base + 0.9999996, base + 1.0]
    samples += [x + k / 1000 for x in (1_764_201_599.0,) for k in range(0, 3000, 7)]
    for created in samples:
        assert clock(created) == _iso(created), created
    assert clock(end_of_2026 - 0.0004) == "2026-12-31T23:59:59.999Z"
    assert clock(end_of_2026) == "2027-01-01T00:00:00.000Z"
    assert clock(end_of_2026 - 0.0000004) == "2027-01-01T00:00:00.000Z"  # rounds as datetime


def test_the_scrubber_remembers_only_clean_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from assemble_logging._logger import Scrubber

    scrubber = Scrubber([ENV_SECRET])
    for _ in range(3):  # the second time and after: scrubbed just the same
        assert scrubber.text(f"key {ENV_SECRET}") == "key ***"
        assert scrubber.text("password=hunter2") == "password=***"
        assert scrubber.text("task get_user started") == "task get_user started"
    assert scrubber._clean == {"task get_user started"}
    monkeypatch.setattr(_logger, "_CLEAN_MAX", 10)
    for n in range(25):
        assert scrubber.text(f"request {n}") == f"request {n}"
    assert len(scrubber._clean) <= 10
    long = "x" * (_logger._CLEAN_LEN + 1)
    assert scrubber.text(long) == long and long not in scrubber._clean


def test_field_names_are_recognised_by_the_runners_rule_with_the_cache() -> None:
    class Key(str):
        pass

    secret = {"password": True, "PassWord": True, "x-auth": True, "max_tokens": True}
    for key, expected in {**secret, "author": False, "event": False, "id": False}.items():
        assert runner.is_secret_key(key) is expected
        assert _logger._secret_name(key) is expected
        assert _logger._secret_name(key) is expected  # cached
    formatter = _logger.JsonFormatter(_logger.Scrubber())
    line = formatter.line(0.0, "INFO", "x", "m", {Key("password"): "pw", "author": "Ada"})
    assert json.loads(line)["password"] == "***" and json.loads(line)["author"] == "Ada"


def test_the_encoder_writes_what_json_dumps_writes() -> None:
    values: list[Any] = [
        "x",
        'é \u2028 \n " \\',
        1,
        -2.5,
        float("nan"),
        float("inf"),
        None,
        True,
        {"a": [1, {"b": object}], 3: "int key", 1.5: None, None: 0, True: 1},
        [(), [], {}],
        object(),
    ]
    for value in values:
        assert _logger._encode(value) == json.dumps(value, ensure_ascii=False, default=str)
    with pytest.raises(TypeError):
        _logger._encode({(1, 2): "tuple key"})


def test_the_text_format_quotes_what_str_isspace_calls_space() -> None:
    every = "".join(map(chr, range(0x110000)))
    assert set(_logger._SPACE.findall(every)) == {c for c in every if c.isspace()}
