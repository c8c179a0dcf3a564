"""``sql.engine``: a SQLAlchemy ``AsyncEngine``, checked at init, disposed at dispose.

SQLite through aiosqlite is the embedded default (``sqlite+aiosqlite:///app.db``);
PostgreSQL through asyncpg for production (``postgresql+asyncpg://...``). SQLAlchemy's
asyncio extension runs on asyncio only: on trio, init fails with a clear error. The
libraries are the optional extra ``assemble[sql]``, imported only when an engine is
made, so the plugin loads without them (``check`` reports what to install).

The value is a :class:`SqlEngine`, an ``AsyncEngine`` whose failures are classified
(``_errors.py``: ``<id>.unavailable`` 503, ``<id>.timeout`` 504, ``<id>.invalid_data``
422) and bounded on the client side: opening a connection (``connect_timeout``),
waiting for a pooled one (``pool_timeout``) and each operation (``command_timeout``).
After the database could not be reached, calls fail at once for half a second instead of
each waiting out those bounds (:class:`Health`); one call at a time probes it.
SQL parameters never appear in errors or logs (``hide_parameters``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

import assembler
import runner
from runner.errors import ResourceFailure, RunnerError

DEFAULT_URL = "sqlite+aiosqlite:///app.db"
DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


@dataclass(frozen=True)
class SqlConfig:
    """``sql.engine``'s config."""

    url: str = assembler.option(
        DEFAULT_URL,
        doc="a SQLAlchemy async URL: `sqlite+aiosqlite:///path.db` "
        "(relative to the working directory; `sqlite+aiosqlite://` in memory) or "
        "`postgresql+asyncpg://user:password@host:5432/db`",
        minLength=1,
    )
    pool_size: int = assembler.option(
        5,
        doc="connections kept open (PostgreSQL); up to as many more are "
        "opened under load (`max_overflow`)",
        minimum=1,
        maximum=1000,
    )
    statement_timeout: assembler.Duration = assembler.option(
        "30s",
        doc="the longest one statement may run; past it the server "
        "cancels it: SqlTimeout (504). PostgreSQL only",
    )
    connect_timeout: assembler.Duration = assembler.option(
        "5s",
        doc="the longest opening a connection (and the check at init) may "
        "take; past it: `<id>.unavailable` (503). SQLite: how long a statement waits "
        "for a lock",
    )
    pool_timeout: assembler.Duration = assembler.option(
        "5s",
        doc="the longest a call waits for a free pooled connection when all "
        "are busy; past it: `<id>.unavailable` (503). PostgreSQL only",
    )
    command_timeout: assembler.Duration | None = assembler.option(
        None,
        doc="the longest the client waits for the database to answer one "
        "operation (a statement, a commit, the pool's liveness check), whatever the "
        "server does; past it the connection is dropped: `<id>.unavailable` (503). "
        "Default: `statement_timeout` + 1s. PostgreSQL only",
    )
    echo: bool = assembler.option(
        False, doc="log every statement (SQLAlchemy's `echo`) under `sqlalchemy.engine`"
    )


class SqlEngineError(RunnerError):
    """``sql.engine`` could not start: bad URL, unreachable database, missing driver."""

    code = "sql.engine_failed"


def _scheme(url: str) -> tuple[str, str]:
    """``(backend, driver)`` of a URL (``("postgresql", "asyncpg")``), ``("", "")`` if none."""
    head = url.split("://", 1)[0] if "://" in url else ""
    backend, _, driver = head.partition("+")
    return backend, driver


def check(config: Any, report: assembler.ConfigReport) -> None:
    url = str((config or {}).get("url", DEFAULT_URL))
    backend, driver = _scheme(url)
    if backend not in DRIVERS:
        report(
            f"{safe_url(url)!r} is not a URL sql.engine supports",
            at=("url",),
            hint="write sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db",
        )
        return
    if driver != DRIVERS[backend]:
        report(
            f"{safe_url(url)!r}: sql.engine needs the async driver "
            f"`{backend}+{DRIVERS[backend]}`, not `{backend}{'+' + driver if driver else ''}`",
            at=("url",),
            hint=f"write {backend}+{DRIVERS[backend]}://...",
        )
    for module in ("sqlalchemy", DRIVERS[backend]):
        if not report.require_library("sql.engine", module, extra="sql"):
            break


def safe_url(url: str) -> str:
    """``url`` with its password and credential parameters hidden (for messages and logs)."""
    return assembler.mask_url(url)


class Timeouts:
    """The engine's client-side bounds, in seconds, read once from its config."""

    def __init__(self, config: SqlConfig) -> None:
        self.connect = config.connect_timeout
        self.pool = config.pool_timeout
        self.statement = config.statement_timeout
        command = config.command_timeout
        self.command = command if command is not None else self.statement + 1


def _options(url: Any, config: SqlConfig, timeouts: Timeouts) -> dict[str, Any]:
    """``create_async_engine`` keywords for ``url`` (a SQLAlchemy ``URL``)."""
    options: dict[str, Any] = {
        "echo": config.echo,
        "pool_pre_ping": True,
        "hide_parameters": True,  # a password hash in an error's text would reach the log
    }
    if url.get_backend_name() == "postgresql":
        size = config.pool_size
        settings = {"statement_timeout": str(round(timeouts.statement * 1000))}
        if "application_name" in url.query:  # libpq's URL option; asyncpg takes it here
            settings["application_name"] = str(url.query["application_name"])
        options.update(
            pool_size=size,
            max_overflow=size,
            pool_timeout=timeouts.pool,
            connect_args={
                "timeout": timeouts.connect,
                "command_timeout": timeouts.command,
                "server_settings": settings,
            },
        )
    elif url.database in (None, "", ":memory:"):  # one shared in-memory database
        from sqlalchemy.pool import StaticPool

        options.update(poolclass=StaticPool, connect_args={"timeout": timeouts.connect})
    else:
        options.update(connect_args={"timeout": timeouts.connect})
    return options


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # what a user of foreign keys expects
    cursor.close()


async def make_engine(config: SqlConfig) -> Any:
    """Init: create the engine, connect once (bounded) and run ``SELECT 1``."""
    url_text = config.url
    assembler.require_asyncio(
        SqlEngineError, "sql.engine", "SQLAlchemy's asyncio extension runs on asyncio only"
    )
    assembler.require_library(
        "sql.engine", "sqlalchemy", extra="sql", library="SQLAlchemy", error=SqlEngineError
    )
    from sqlalchemy import event, text
    from sqlalchemy.engine import make_url

    shown = safe_url(url_text)
    timeouts = Timeouts(config)
    resource = getattr(runner.current_resource.try_use(), "id", "sql.engine")
    try:
        url = make_url(url_text)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            folder = Path(url.database).parent
            if not folder.is_dir():  # before aiosqlite starts a thread for a doomed file
                raise SqlEngineError(
                    f"sql.engine cannot open {shown}: the folder {str(folder)!r} does not exist",
                    hint=f"create {str(folder)!r}, or point the URL (or DATA_DIR) elsewhere",
                )
        options = _options(url, config, timeouts)
        url = url.difference_update_query(["application_name"])  # passed in options
        from ._bounded import SqlEngine

        engine = SqlEngine.create(url, options, resource, timeouts)
    except SqlEngineError:
        raise
    except Exception as exc:  # ArgumentError, NoSuchModuleError (a missing driver), ...
        raise SqlEngineError(
            f"sql.engine cannot use {shown!r}: {type(exc).__name__}: {exc}",
            hint="write sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db, "
            'and install assemble[sql] (pip install "assemble[sql]")',
        ) from None
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    try:
        with anyio.fail_after(timeouts.connect):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:
        await engine.dispose()
        detail = getattr(exc, "detail", "") or str(exc)
        if isinstance(exc, TimeoutError) and not isinstance(exc, ResourceFailure):
            detail = "no answer in time"
        raise SqlEngineError(
            f"sql.engine cannot connect to {shown}: {detail.splitlines()[0] if detail else ''}",
            hint=_hint(url),
        ) from None
    return engine


def _hint(url: Any) -> str:
    if url.get_backend_name() == "sqlite":
        folder = Path(url.database or ".").parent
        return f"check that the folder {str(folder)!r} exists and is writable"
    return "start the database, or fix `url` (host, port, user, password, database)"


async def dispose_engine(engine: Any) -> None:
    await engine.dispose()


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="sql.engine",
            kind="resource",
            config=SqlConfig,
            init=make_engine,
            dispose=dispose_engine,
            check=check,
            description="a SQLAlchemy AsyncEngine (SQLite or PostgreSQL), checked at init",
        )
    ]
