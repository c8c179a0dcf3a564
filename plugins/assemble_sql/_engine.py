"""``sql.engine``: a SQLAlchemy ``AsyncEngine``, checked at init, disposed at dispose.

SQLite through aiosqlite is the embedded default (``sqlite+aiosqlite:///app.db``);
PostgreSQL through asyncpg for production (``postgresql+asyncpg://...``). SQLAlchemy's
asyncio extension runs on asyncio only: on trio, init fails with a clear error. The
libraries are the optional extra ``assemble[sql]``, imported only when an engine is
made, so the plugin loads without them (``check`` reports what to install).

Two failures become typed errors (an HTTP edge answers with their status):

- a statement cancelled by ``statement_timeout`` (PostgreSQL's ``57014``) is
  :class:`SqlTimeout` (``TimeoutError``, 504);
- a lost or refused connection (SQLAlchemy's disconnect detection, or a failed
  connect) is :class:`SqlUnavailable` (``ConnectionError``, 503).

Anything else (an ``IntegrityError`` of a unique key, a syntax error) stays
SQLAlchemy's own exception, for the task to catch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

import assembler
from runner.errors import RunnerError

DEFAULT_URL = "sqlite+aiosqlite:///app.db"
DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
QUERY_CANCELED = "57014"  # PostgreSQL's sqlstate for a statement cancelled by a timeout

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "default": DEFAULT_URL,
            "description": "a SQLAlchemy async URL: `sqlite+aiosqlite:///path.db` "
            "(relative to the working directory; `sqlite+aiosqlite://` in memory) or "
            "`postgresql+asyncpg://user:password@host:5432/db`",
        },
        "pool_size": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "default": 5,
            "description": "connections kept open (PostgreSQL); up to as many more are "
            "opened under load (`max_overflow`)",
        },
        "statement_timeout": {
            **assembler.DURATION,
            "default": "30s",
            "description": "the longest one statement may run; past it the server "
            "cancels it: SqlTimeout (504). PostgreSQL only",
        },
        "connect_timeout": {
            **assembler.DURATION,
            "default": "10s",
            "description": "the longest the check at init, a new connection or a wait for "
            "a pooled one may take (SQLite: how long a statement waits for a lock)",
        },
        "echo": {
            "type": "boolean",
            "default": False,
            "description": "log every statement (SQLAlchemy's `echo`) under `sqlalchemy.engine`",
        },
    },
    "additionalProperties": False,
}


class SqlEngineError(RunnerError):
    """``sql.engine`` could not start: bad URL, unreachable database, missing driver."""

    code = "sql.engine_failed"


class SqlTimeout(RunnerError, TimeoutError):
    """A statement ran past ``statement_timeout`` and the database cancelled it."""

    code = "sql.statement_timeout"
    http_status = 504

    def __init__(self, after: float) -> None:
        self.after = after
        super().__init__(
            f"a SQL statement ran past statement_timeout ({after:g}s) and was cancelled",
            hint="make the query faster (an index?), or raise the engine's statement_timeout",
        )


class SqlUnavailable(RunnerError, ConnectionError):
    """The database connection was lost or refused."""

    code = "sql.unavailable"
    http_status = 503

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the database is unavailable: {detail}",
            hint="the pool reconnects on the next call once the database answers",
        )


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
        try:
            __import__(module)
        except ImportError:
            report(
                f"sql.engine needs `{module}`, which is not installed",
                hint='install assemble[sql] (pip install "assemble[sql]")',
            )
            break


def safe_url(url: str) -> str:
    """``url`` with its password hidden (for messages and logs)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database url>"


def _options(url: Any, config: dict[str, Any], connect: float, statement: float) -> dict[str, Any]:
    """``create_async_engine`` keywords for ``url`` (a SQLAlchemy ``URL``), with the
    connect and statement timeouts in seconds."""
    options: dict[str, Any] = {"echo": bool(config.get("echo", False)), "pool_pre_ping": True}
    if url.get_backend_name() == "postgresql":
        size = int(config.get("pool_size", 5))
        settings = {"statement_timeout": str(round(statement * 1000))}
        if "application_name" in url.query:  # libpq's URL option; asyncpg takes it here
            settings["application_name"] = str(url.query["application_name"])
        options.update(
            pool_size=size,
            max_overflow=size,
            pool_timeout=connect,
            connect_args={"timeout": connect, "server_settings": settings},
        )
    elif url.database in (None, "", ":memory:"):  # one shared in-memory database
        from sqlalchemy.pool import StaticPool

        options.update(poolclass=StaticPool, connect_args={"timeout": connect})
    else:
        options.update(connect_args={"timeout": connect})
    return options


def _on_error(statement_timeout: float) -> Any:
    def on_error(ctx: Any) -> None:
        if getattr(ctx, "is_pre_ping", False):
            return  # the pool's own liveness check: it reconnects, nothing to report
        original = ctx.original_exception
        if getattr(original, "sqlstate", None) == QUERY_CANCELED and "statement timeout" in str(
            original
        ):  # 57014 also covers a manual pg_cancel_backend: that one stays as it is
            raise SqlTimeout(statement_timeout) from ctx.sqlalchemy_exception
        if ctx.is_disconnect or ctx.connection is None:
            detail = f"{type(original).__name__}: {original}".strip()
            raise SqlUnavailable(detail) from ctx.sqlalchemy_exception

    return on_error


def _connect_or_unavailable(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
    """Open a DBAPI connection; a refused or timed-out connect (the driver's own
    ``OSError``/``TimeoutError``, which SQLAlchemy does not wrap) is SqlUnavailable."""
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as exc:
        raise SqlUnavailable(f"cannot connect: {type(exc).__name__}: {exc}") from exc


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # what a user of foreign keys expects
    cursor.close()


async def make_engine(config: Any) -> Any:
    """Init: create the engine, connect once (bounded) and run ``SELECT 1``."""
    config = dict(config or {})
    url_text = str(config.get("url", DEFAULT_URL))
    assembler.require_asyncio(
        SqlEngineError, "sql.engine", "SQLAlchemy's asyncio extension runs on asyncio only"
    )
    try:
        from sqlalchemy import event, text
        from sqlalchemy.engine import make_url
        from sqlalchemy.ext.asyncio import create_async_engine
    except ImportError:
        raise SqlEngineError(
            "sql.engine needs SQLAlchemy, which is not installed",
            hint='install assemble[sql] (pip install "assemble[sql]")',
        ) from None
    shown = safe_url(url_text)
    connect_timeout = assembler.duration(config.get("connect_timeout", "10s"))
    statement_timeout = assembler.duration(config.get("statement_timeout", "30s"))
    try:
        url = make_url(url_text)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            folder = Path(url.database).parent
            if not folder.is_dir():  # before aiosqlite starts a thread for a doomed file
                raise SqlEngineError(
                    f"sql.engine cannot open {shown}: the folder {str(folder)!r} does not exist",
                    hint=f"create {str(folder)!r}, or point the URL (or DATA_DIR) elsewhere",
                )
        options = _options(url, config, connect_timeout, statement_timeout)
        url = url.difference_update_query(["application_name"])  # passed in options
        engine = create_async_engine(url, **options)
    except SqlEngineError:
        raise
    except Exception as exc:  # ArgumentError, NoSuchModuleError (a missing driver), ...
        raise SqlEngineError(
            f"sql.engine cannot use {shown!r}: {type(exc).__name__}: {exc}",
            hint="write sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db, "
            'and install assemble[sql] (pip install "assemble[sql]")',
        ) from None
    event.listen(engine.sync_engine, "handle_error", _on_error(statement_timeout))
    event.listen(engine.sync_engine, "do_connect", _connect_or_unavailable)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    try:
        with anyio.fail_after(connect_timeout):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:
        await engine.dispose()
        cause = exc.__cause__ if isinstance(exc, SqlUnavailable) and exc.__cause__ else exc
        detail = "no answer in time" if isinstance(exc, TimeoutError) else str(cause)
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
            config_schema=SCHEMA,
            init=make_engine,
            dispose=dispose_engine,
            check=check,
            description="a SQLAlchemy AsyncEngine (SQLite or PostgreSQL), checked at init",
        )
    ]
