"""The engine ``sql.engine`` hands out: classified failures, bounded waits, fast failure.

Imported when an engine is made (SQLAlchemy is the optional extra ``assemble[sql]``).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from runner.errors import ResourceFailure

from ._errors import SqlUnavailable, classify

#: After the database could not be reached, calls fail at once for this long; then one
#: probes it. So service is back within about this long of the database.
RETRY_AFTER = 0.5


class Health:
    """Whether the database could be reached lately.

    After it could not (refused, silent past a bound), calls fail at once with the same
    :class:`SqlUnavailable` for :data:`RETRY_AFTER` seconds instead of each waiting out
    the bounds and piling up; then one call at a time goes through as a probe, and the
    first that succeeds ends the outage.
    """

    def __init__(self, probe_bound: float) -> None:
        self.probe_bound = probe_bound
        self.down: SqlUnavailable | None = None
        self.retry_at = 0.0  # before this, calls fail at once
        self.probing_until = 0.0  # a probe is in flight until then: others fail at once

    def admit(self) -> None:
        """Raise the outage's error while calls should fail fast; else let one through
        (during an outage, as the one probe)."""
        if self.down is None:
            return
        now = time.monotonic()
        if now < max(self.retry_at, self.probing_until):
            self._refuse()
        self.probing_until = now + self.probe_bound

    def refuse_during_outage(self) -> None:
        """Raise the outage's error inside its fast-fail window (starts no probe): for a
        call that waited in the pool's queue while the outage began."""
        if self.down is not None and time.monotonic() < self.retry_at:
            self._refuse()

    def _refuse(self) -> None:
        down = self.down
        assert down is not None
        raise SqlUnavailable(down.resource, down.why, detail=down.detail, outage=True)

    def failed(self, error: SqlUnavailable) -> None:
        self.down = error
        self.retry_at = time.monotonic() + RETRY_AFTER
        self.probing_until = 0.0

    def ok(self) -> None:
        self.down = None


def _ping(engine: SqlEngine, dbapi_connection: Any) -> bool:
    """The pool's liveness check, one bounded round trip (SQLAlchemy's own wraps it in a
    transaction: three round trips, each waiting up to ``command_timeout`` on a stalled
    database). ``False`` (reconnect) for a connection the server closed; a silence past
    the bound is the database's, not the connection's: an outage, raised as such."""
    driver = dbapi_connection.driver_connection
    try:
        dbapi_connection.await_(driver.fetchrow(";", timeout=engine._command))
    except TimeoutError as exc:
        raise engine.classified(exc) from exc
    except Exception:
        return False
    return True


def _drop_at_once(dbapi_connection: Any, record: Any, exc: BaseException | None) -> None:
    """An invalidated connection (its peer went silent or away, or it failed in a way
    that leaves it unusable) is closed at once.

    SQLAlchemy first tries a polite close, which waits up to 2 s for an answer that a
    stalled database never gives: that would double the bound a caller waits."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    terminate = getattr(driver, "terminate", None)
    if callable(terminate):
        terminate()


class SqlConnection(AsyncConnection):
    """A connection of :class:`SqlEngine`: taking it from the pool is classified, and
    fails at once during an outage."""

    async def start(self, is_ctxmanager: bool = False) -> AsyncConnection:
        engine = self.engine
        assert isinstance(engine, SqlEngine)
        engine.health.admit()
        try:
            started = await super().start(is_ctxmanager)
        except Exception as exc:
            raise engine.classified(exc, connecting=True) from exc
        engine.health.ok()
        return started


class SqlEngine(AsyncEngine):
    """The value of ``sql.engine``: a SQLAlchemy ``AsyncEngine`` that names its resource
    in its errors, bounds its waits and fails fast while the database is out."""

    _connection_cls = SqlConnection

    resource: str
    health: Health
    _bound: float
    _command: float
    _statement: float

    @classmethod
    def create(cls, url: Any, options: dict[str, Any], resource: str, timeouts: Any) -> SqlEngine:
        """An engine for ``url`` (``create_async_engine`` keywords ``options``)."""
        engine = cls(create_async_engine(url, **options).sync_engine)
        engine.resource = resource
        engine._bound, engine._command = timeouts.connect, timeouts.command
        engine._statement = timeouts.statement
        engine.health = Health(max(timeouts.connect, timeouts.command))
        event.listen(engine.sync_engine, "handle_error", engine._on_error)
        event.listen(engine.sync_engine, "do_connect", engine._on_connect)
        event.listen(engine.sync_engine, "invalidate", _drop_at_once)
        if engine.dialect.driver == "asyncpg":
            engine.dialect.do_ping = partial(_ping, engine)  # type: ignore[method-assign]
        return engine

    def classified(self, exc: BaseException, *, connecting: bool = False) -> BaseException:
        """``exc`` classified (remembered when it means an outage), or ``exc`` itself
        when it is not one of the database's failures."""
        found = classify(
            self.resource,
            exc,
            bound=self._bound if connecting else self._command,
            statement_timeout=self._statement,
            connecting=connecting,
        )
        if isinstance(found, SqlUnavailable) and found.outage:
            self.health.failed(found)
        return found if found is not None else exc

    def _on_error(self, ctx: Any) -> None:
        """``handle_error``: a failed statement or commit, classified."""
        if getattr(ctx, "is_pre_ping", False):
            return  # the pool's liveness check: it reconnects (classified in do_connect)
        found = self.classified(ctx.original_exception)
        if isinstance(found, ResourceFailure):
            if isinstance(found, SqlUnavailable):
                ctx.is_disconnect = True  # never hand this connection out again
            raise found from ctx.sqlalchemy_exception

    def _on_connect(self, dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
        """``do_connect``: a refused, failed or timed-out connect (asyncpg's ``OSError``,
        ``TimeoutError`` or a server error such as "not accepting connections", which
        SQLAlchemy does not pass to ``handle_error``), classified."""
        self.health.refuse_during_outage()
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            raise self.classified(exc, connecting=True) from exc
