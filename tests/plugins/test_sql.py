"""``sql.engine``: real SQLite files and a real PostgreSQL (127.0.0.1:5432, database `test`).

PostgreSQL faults are made for real: ``pg_sleep`` past the statement timeout, and
``pg_terminate_backend`` on the pool's own connections.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import runner
from assemble_sql import SqlInvalidData, SqlTimeout, SqlUnavailable
from runner.errors import InvalidData, ResourceUnavailable

from ._apps import app, problems

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """SQLAlchemy's asyncio extension runs on asyncio only."""
    return "asyncio"


CODE = """
from sqlalchemy import text

async def setup(input, db):
    async with db.begin() as conn:
        table = input["table"]
        await conn.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    return "ok"

async def add(input, db):
    async with db.begin() as conn:
        await conn.execute(text(f"INSERT INTO {input['table']} (id, name) VALUES (:id, :name)"),
                           {"id": input["id"], "name": input["name"]})
    return input["id"]

async def names(input, db):
    async with db.connect() as conn:
        rows = await conn.execute(text(f"SELECT name FROM {input['table']} ORDER BY id"))
        return [r[0] for r in rows]

async def sleep(input, db):
    async with db.connect() as conn:
        await conn.execute(text("SELECT pg_sleep(:s)"), {"s": input["seconds"]})
    return "slept"

async def pids(input, db):
    async with db.connect() as conn:
        return await conn.scalar(text("SELECT pg_backend_pid()"))

async def sleeping(input, db):
    async with db.connect() as conn:
        return await conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app "
            "AND state = 'active' AND query LIKE 'SELECT pg_sleep%'"), {"app": input["app"]})

async def value(input, db):
    async with db.connect() as conn:
        return await conn.scalar(text(f"SELECT CAST(:v AS {input['type']})"), {"v": input["v"]})

async def kill_others(input, db):
    async with db.connect() as conn:
        return await conn.scalar(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = :app AND pid <> pg_backend_pid()"), {"app": input["app"]})
"""

MANIFEST = """
assemble: 1
id: sqlapp
resources:
  db:
    use: sql.engine
    config: CONFIG
tasks:
  setup: {run: sql_code:setup, dependencies: {db: db}}
  add: {run: sql_code:add, dependencies: {db: db}}
  names: {run: sql_code:names, dependencies: {db: db}}
  sleep: {run: sql_code:sleep, dependencies: {db: db}}
  pids: {run: sql_code:pids, dependencies: {db: db}}
  sleeping: {run: sql_code:sleeping, dependencies: {db: db}}
  kill_others: {run: sql_code:kill_others, dependencies: {db: db}}
  value: {run: sql_code:value, dependencies: {db: db}}
"""


def sql_app(tmp_path: Path, config: str) -> runner.Resource:
    return app(tmp_path, MANIFEST.replace("CONFIG", config), sql_code=CODE)


# -- SQLite (the embedded default) ----------------------------------------------------


async def test_sqlite_file_round_trip_and_disposal(tmp_path: Path) -> None:
    path = tmp_path / "data" / "app.db"
    path.parent.mkdir()
    config = f'{{url: "sqlite+aiosqlite:///{path}"}}'
    async with runner.run(sql_app(tmp_path, config)) as rt:
        engine = rt.resource("db")
        await rt.run_task("setup", {"table": "users"})
        await rt.run_task("add", {"table": "users", "id": 1, "name": "ada"})
        await rt.run_task("add", {"table": "users", "id": 2, "name": "grace"})
        assert await rt.run_task("names", {"table": "users"}) == ["ada", "grace"]
    assert path.exists()
    assert engine.pool.checkedout() == 0 and engine.pool.checkedin() == 0  # disposed
    async with runner.run(sql_app(tmp_path, config)) as rt:  # the data is on disk
        assert await rt.run_task("names", {"table": "users"}) == ["ada", "grace"]


async def test_a_unique_violation_stays_sqlalchemys_for_the_task_to_catch(tmp_path: Path) -> None:
    from sqlalchemy.exc import IntegrityError

    async with runner.run(sql_app(tmp_path, '{url: "sqlite+aiosqlite://"}')) as rt:
        await rt.run_task("setup", {"table": "t"})
        await rt.run_task("add", {"table": "t", "id": 1, "name": "ada"})
        with pytest.raises(IntegrityError):
            await rt.run_task("add", {"table": "t", "id": 2, "name": "ada"})
        assert await rt.run_task("names", {"table": "t"}) == ["ada"]  # one shared memory db


async def test_a_sqlite_file_in_a_missing_folder_fails_startup_with_a_hint(tmp_path: Path) -> None:
    config = f'{{url: "sqlite+aiosqlite:///{tmp_path}/missing/app.db"}}'
    with pytest.raises(runner.errors.ResourceInitError) as caught:
        async with runner.run(sql_app(tmp_path, config)):
            pass
    cause = caught.value.__cause__
    assert f"the folder '{tmp_path}/missing' does not exist" in str(cause)
    assert f"hint: create '{tmp_path}/missing'" in str(cause)


def test_validate_names_a_sync_driver_and_a_foreign_url(tmp_path: Path) -> None:
    manifest = """
    assemble: 1
    id: v
    resources:
      a: {use: sql.engine, config: {url: "postgresql://u:secret@h/db"}}
      b: {use: sql.engine, config: {url: "mysql+aiomysql://h/db"}}
    """
    found = problems(tmp_path, manifest)
    assert [(code, line) for code, line, _, _ in found] == [("ASM603", 4), ("ASM603", 5)]
    assert "needs the async driver `postgresql+asyncpg`" in found[0][3]
    assert "secret" not in found[0][3]  # the password is hidden
    assert "is not a URL sql.engine supports" in found[1][3]


def test_on_trio_init_fails_clearly(tmp_path: Path) -> None:
    import trio

    async def start() -> None:
        async with runner.run(sql_app(tmp_path, '{url: "sqlite+aiosqlite://"}')):
            pass

    with pytest.raises(runner.errors.ResourceInitError) as caught:
        trio.run(start)
    assert "needs the asyncio backend" in str(caught.value.__cause__)


# -- PostgreSQL -----------------------------------------------------------------------


def pg_config(url: str, app_name: str = "", **extra: str) -> str:
    if app_name:
        url += (
            f"?application_name={app_name}" if "?" not in url else f"&application_name={app_name}"
        )
    parts = [f'url: "{url}"', *(f"{k}: {v}" for k, v in extra.items())]
    return "{" + ", ".join(parts) + "}"


async def test_postgres_round_trip(tmp_path: Path, postgres_url: str) -> None:
    table = f"t_{uuid.uuid4().hex[:10]}"
    async with runner.run(sql_app(tmp_path, pg_config(postgres_url))) as rt:
        await rt.run_task("setup", {"table": table})
        try:
            await rt.run_task("add", {"table": table, "id": 1, "name": "ada"})
            assert await rt.run_task("names", {"table": table}) == ["ada"]
        finally:
            from sqlalchemy import text

            async with rt.resource("db").begin() as conn:
                await conn.execute(text(f"DROP TABLE {table}"))


async def test_a_statement_past_the_timeout_is_a_typed_error_at_once(
    tmp_path: Path, postgres_url: str
) -> None:
    # 500 ms, not less: the timeout bounds every statement of the pool, and the quick
    # ones below must stay well inside it on a loaded machine.
    async with runner.run(
        sql_app(tmp_path, pg_config(postgres_url, statement_timeout="500ms"))
    ) as rt:
        start = time.monotonic()
        with pytest.raises(SqlTimeout) as late:
            await rt.run_task("sleep", {"seconds": 5})
        elapsed = time.monotonic() - start
        assert elapsed < 3  # cancelled by the server at 500 ms; bench/ has the figure
        assert (late.value.code, late.value.http_status) == ("db.timeout", 504)
        assert isinstance(late.value, TimeoutError)
        assert await rt.run_task("sleep", {"seconds": 0.01}) == "slept"  # the pool is fine


async def test_the_pool_recovers_from_killed_connections(tmp_path: Path, postgres_url: str) -> None:
    name = f"assemble_test_{uuid.uuid4().hex[:8]}"
    config = pg_config(postgres_url, app_name=name, pool_size="3")
    async with runner.run(sql_app(tmp_path, config)) as rt:
        import anyio

        async with anyio.create_task_group() as tg:  # open several pooled connections
            for _ in range(3):
                tg.start_soon(rt.run_task, "sleep", {"seconds": 0.05})
        killed: int = await rt.run_task("kill_others", {"app": name})
        assert killed >= 1
        start = time.monotonic()
        for _ in range(4):  # every pooled connection was killed: each is replaced
            assert await rt.run_task("sleep", {"seconds": 0}) == "slept"
        assert time.monotonic() - start < 2


async def test_an_unreachable_postgres_fails_startup_without_the_password(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+asyncpg://app:hunter2@127.0.0.1:{port}/db?sslpassword=keypass9"
    with pytest.raises(runner.errors.ResourceInitError) as caught:
        async with runner.run(sql_app(tmp_path, pg_config(url, connect_timeout="2s"))):
            pass
    message = str(caught.value.__cause__)
    shown = f"postgresql+asyncpg://app:***@127.0.0.1:{port}/db?sslpassword=***"
    assert f"sql.engine cannot connect to {shown}" in message
    assert "hunter2" not in message and "keypass9" not in message
    assert "start the database" in message


async def test_a_lost_database_mid_call_is_unavailable(tmp_path: Path, postgres_url: str) -> None:
    """A connection killed while its statement runs: SqlUnavailable (503), then recovery."""
    name = f"assemble_test_{uuid.uuid4().hex[:8]}"
    async with runner.run(sql_app(tmp_path, pg_config(postgres_url, app_name=name))) as rt:
        import anyio

        outcome: list[Any] = []

        async def long() -> None:
            try:
                outcome.append(await rt.run_task("sleep", {"seconds": 5}))
            except SqlUnavailable as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(long)
            # the statement runs before its connection is killed: waited for, as a fixed
            # sleep may be too short on a loaded machine
            with anyio.fail_after(10):
                while not await rt.run_task("sleeping", {"app": name}):
                    await anyio.sleep(0.02)
            await rt.run_task("kill_others", {"app": name})
        (lost,) = outcome
        assert isinstance(lost, SqlUnavailable) and lost.http_status == 503
        assert await rt.run_task("sleep", {"seconds": 0}) == "slept"


async def test_a_database_that_went_away_is_unavailable(tmp_path: Path) -> None:
    """PostgreSQL reached through a proxy that is closed after startup: a call made while
    nothing listens is SqlUnavailable (503), not a raw ConnectionRefusedError."""
    import anyio

    from assemble_sql import SqlUnavailable

    async def relay(client: Any) -> None:
        async with client, await anyio.connect_tcp("127.0.0.1", 5432) as upstream:

            async def pump(a: Any, b: Any) -> None:
                try:
                    async for chunk in a:
                        await b.send(chunk)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass

            async with anyio.create_task_group() as tg:
                tg.start_soon(pump, client, upstream)
                tg.start_soon(pump, upstream, client)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    proxy = anyio.CancelScope()

    async def serve() -> None:
        with proxy:
            async with listener:
                await listener.serve(relay)

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test"
        config = pg_config(url, connect_timeout="2s", pool_size="1")
        async with runner.run(sql_app(tmp_path, config)) as rt:
            assert await rt.run_task("sleep", {"seconds": 0}) == "slept"
            proxy.cancel()  # the "database" goes away: its connections and its port
            await anyio.sleep(0.1)
            with pytest.raises(SqlUnavailable) as down:
                for _ in range(3):  # the pooled connection is found dead, then a new one
                    await rt.run_task("sleep", {"seconds": 0})
            assert down.value.http_status == 503


# -- classified failures (DESIGN §12): the resource id and the class, never the driver's --


@pytest.mark.parametrize(
    ("type_", "value", "why"),
    [
        ("INTEGER", 2**31, "a number is out of range for its column"),
        ("BIGINT", 2**70, "a number is out of range for its column"),
        ("TEXT", "a\x00b", "a text holds a character the database cannot store"),
        ("TEXT", "a\ud800b", "a text holds a character the database cannot store"),
        ("VARCHAR(3)", 7, "a value does not have the type its column needs"),
        ("NUMERIC(2)", "x", "a value does not have the type its column needs"),
    ],
)
async def test_postgresql_refusing_a_value_is_invalid_data_naming_the_resource(
    tmp_path: Path, postgres_url: str, type_: str, value: Any, why: str
) -> None:
    async with runner.run(sql_app(tmp_path, pg_config(postgres_url))) as rt:
        with pytest.raises(SqlInvalidData) as info:
            await rt.run_task("value", {"type": type_, "v": value})
    error = info.value
    assert isinstance(error, InvalidData) and isinstance(error, ValueError)
    assert (error.code, error.http_status) == ("db.invalid_data", 422)
    assert error.message == f"'db' refused the data: {why}"
    for leak in ("asyncpg", "127.0.0.1", "5432", "SELECT", str(value)[:6]):
        assert leak not in error.message
    assert "SELECT" not in error.detail and str(value)[:6] not in error.detail


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (2**63, "a number is out of range for its column"),
        ("a\ud800", "a text holds a character the database cannot store"),
    ],
)
async def test_sqlite_refusing_a_value_is_invalid_data(
    tmp_path: Path, value: Any, why: str
) -> None:
    async with runner.run(sql_app(tmp_path, '{url: "sqlite+aiosqlite://"}')) as rt:
        with pytest.raises(SqlInvalidData) as info:
            await rt.run_task("value", {"type": "TEXT", "v": value})
    assert info.value.message == f"'db' refused the data: {why}"


def _psql(sql: str) -> None:
    import subprocess

    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc", sql],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def scratch_database(postgres_url: str) -> Any:
    """A database of this test's own (faults are made on it, not on `test`)."""
    name = f"assemble_fault_{uuid.uuid4().hex[:8]}"
    _psql(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    _psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    _psql(f"DROP DATABASE {name} WITH (FORCE)")


async def test_a_database_not_accepting_connections_is_unavailable_fast_then_back(
    tmp_path: Path, scratch_database: str
) -> None:
    import anyio

    name = scratch_database.rsplit("/", 1)[1]
    async with runner.run(sql_app(tmp_path, pg_config(scratch_database))) as rt:
        assert await rt.run_task("sleep", {"seconds": 0}) == "slept"
        _psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        _psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        failures = []
        start = time.monotonic()
        for _ in range(50):  # an outage: every call answers at once, none hangs
            with pytest.raises(SqlUnavailable) as info:
                await rt.run_task("sleep", {"seconds": 0})
            failures.append(info.value)
        assert time.monotonic() - start < 2
        first = failures[0]
        assert isinstance(first, ResourceUnavailable) and first.http_status == 503
        assert first.code == "db.unavailable" and first.retry_after == 1.0
        assert "not currently accepting connections" in first.detail  # for the log
        assert all(f.message == first.message for f in failures)
        assert name not in first.message and "5432" not in first.message
        _psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        ended = time.monotonic()
        with anyio.fail_after(5):
            while True:
                try:
                    assert await rt.run_task("sleep", {"seconds": 0}) == "slept"
                    break
                except SqlUnavailable:
                    await anyio.sleep(0.05)
        assert time.monotonic() - ended < 1.5  # back within about a second


async def test_a_role_over_its_connection_limit_is_unavailable(
    tmp_path: Path, scratch_database: str
) -> None:
    role = f"assemble_limited_{uuid.uuid4().hex[:6]}"
    _psql(f"CREATE ROLE {role} LOGIN")
    try:
        url = scratch_database.replace("postgres@", f"{role}@")
        async with runner.run(sql_app(tmp_path, pg_config(url, pool_size="1"))) as rt:
            assert await rt.run_task("sleep", {"seconds": 0}) == "slept"
            _psql(f"ALTER ROLE {role} CONNECTION LIMIT 0")
            _psql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
            )
            with pytest.raises(SqlUnavailable) as info:
                for _ in range(3):  # the pooled connection is found dead, then a new one
                    await rt.run_task("sleep", {"seconds": 0})
        assert info.value.message == "'db' is unavailable: the database has too many connections"
    finally:
        _psql(f"DROP ROLE IF EXISTS {role}")


async def test_a_stalled_database_costs_a_call_at_most_its_bound(
    tmp_path: Path, postgres_url: str
) -> None:
    """TCP open, no answer (a paused proxy): the first calls wait the bound, then calls
    fail at once; after the stall the service is back within about a second."""
    import anyio

    from tests.hostile.proxy import fault_proxy

    with fault_proxy("127.0.0.1", 5432) as proxy:
        url = postgres_url.replace("127.0.0.1:5432", proxy.url_host)
        config = pg_config(url, connect_timeout="1s", statement_timeout="1s", pool_size="2")
        async with runner.run(sql_app(tmp_path, config)) as rt:
            assert await rt.run_task("sleep", {"seconds": 0}) == "slept"
            proxy.pause()
            took: list[float] = []

            async def one() -> None:
                start = time.monotonic()
                with pytest.raises(SqlUnavailable):
                    await rt.run_task("sleep", {"seconds": 0})
                took.append(time.monotonic() - start)

            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(one)
            for _ in range(20):
                await one()
            assert max(took) < 2 + 1  # command_timeout (statement + 1s), with a margin
            assert sorted(took)[-6] < 0.2  # after the first ones: at once
            proxy.resume()
            ended = time.monotonic()
            with anyio.fail_after(5):
                while True:
                    try:
                        assert await rt.run_task("sleep", {"seconds": 0}) == "slept"
                        break
                    except SqlUnavailable:
                        await anyio.sleep(0.05)
            assert time.monotonic() - ended < 1.5
