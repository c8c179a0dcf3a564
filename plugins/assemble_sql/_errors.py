"""How the database's failures reach a caller: classified, named by the resource id.

A driver error would otherwise reach an HTTP caller as a 500 with a traceback per
request (a database that refuses connections: 2,300 tracebacks in 8 s), or its text
(host, port, driver class) in a 503 body. :func:`classify` turns what SQLAlchemy,
asyncpg and sqlite3 raise into:

- :class:`SqlUnavailable` (``<id>.unavailable``, 503 + ``Retry-After``): the database
  refuses or drops connections, is starting, shutting down or full, or does not answer
  within the client-side bounds;
- :class:`SqlTimeout` (``<id>.timeout``, 504): ``statement_timeout`` cancelled a
  statement (the database answered: the query is too slow);
- :class:`SqlInvalidData` (``<id>.invalid_data``, 422): the database refused a value
  (too long for its column, a number out of range, a character it cannot store).

Anything else (a unique key taken, bad SQL) stays SQLAlchemy's own exception. The
driver's text goes to ``detail`` (logged, never answered), without SQL parameters.
"""

from __future__ import annotations

from typing import Any

from runner.errors import InvalidData, ResourceFailure, ResourceTimeout, ResourceUnavailable

QUERY_CANCELED = "57014"  # PostgreSQL's sqlstate for a statement cancelled by a timeout

#: PostgreSQL SQLSTATEs (a code, else its first two characters) that mean "not now"
#: rather than "your query", and how each reads to a caller.
_NOT_NOW = {
    "08": "the connection to the database failed",
    "53300": "the database has too many connections",
    "53": "the database is out of resources",
    "57P01": "the database is shutting down",
    "57P02": "the database is shutting down",
    "57P03": "the database is starting up",
    "58": "the database had a system error",
    "3D000": "the database does not exist",
    "28": "the database refused the login",
}

#: Why a value was refused, by SQLSTATE (class 22: data exception).
_INVALID = {
    "22001": "a value is too long for its column",
    "22003": "a number is out of range for its column",
    "22021": "a text holds a character the database cannot store",
    "22P05": "a text holds a character the database cannot store",
    "22P02": "a value does not have the form its column needs",
    "22007": "a date or time is not valid",
    "22008": "a date or time is out of range",
    "22012": "a division by zero",
}


class SqlUnavailable(ResourceUnavailable):
    """The database cannot take calls now (``<id>.unavailable``, 503, also a
    ``ConnectionError``): refused, lost, starting, full, or silent past the bounds.

    ``outage``: the database could not be reached at all, or went silent (not one
    connection dropped, not a pool that is busy)."""

    def __init__(self, resource: str, why: str, *, detail: str = "", outage: bool = False) -> None:
        super().__init__(resource, why, detail=detail)
        self.outage = outage


class SqlTimeout(ResourceTimeout):
    """``statement_timeout`` cancelled a statement (``<id>.timeout``, 504, also a
    ``TimeoutError``)."""

    def __init__(self, resource: str, after: float, *, detail: str = "") -> None:
        super().__init__(
            resource,
            after,
            f"a statement ran past statement_timeout ({after:g}s) and the database cancelled it",
            detail=detail,
            hint="make the query faster (an index?), or raise the engine's statement_timeout",
        )


class SqlInvalidData(InvalidData):
    """The database refused a value (``<id>.invalid_data``, 422, also a ``ValueError``)."""


def sqlstate(exc: BaseException | None) -> str:
    """The PostgreSQL SQLSTATE of ``exc`` or of what it wraps (``""`` when none)."""
    seen = 0
    while exc is not None and seen < 5:
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if isinstance(code, str) and code:
            return code
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1
    return ""


def _driver(exc: BaseException) -> BaseException:
    """The driver's exception (asyncpg's, sqlite3's) that SQLAlchemy's ``exc`` wraps
    (SQLAlchemy's own wrappers, and its asyncpg adapter's, are unwrapped)."""
    for _ in range(5):
        if not type(exc).__module__.startswith("sqlalchemy"):
            break
        inner = getattr(exc, "orig", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _text(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__


def classify(
    resource: str,
    exc: BaseException,
    *,
    bound: float,
    statement_timeout: float,
    connecting: bool = False,
) -> ResourceFailure | None:
    """The classified error for ``exc`` (``None``: leave it as it is).

    ``connecting``: it failed while a connection was being opened or checked (any
    failure there means the database cannot be reached); ``bound`` is the client-side
    deadline that a ``TimeoutError`` ran past."""
    if isinstance(exc, ResourceFailure):
        return exc
    driver = _driver(exc)
    code = sqlstate(exc)
    if pool_busy(exc):
        return SqlUnavailable(resource, "every pooled connection is busy", detail=_text(exc))
    if code == QUERY_CANCELED and "statement timeout" in str(driver):
        return SqlTimeout(resource, statement_timeout, detail=_text(driver))
    if isinstance(driver, TimeoutError) or type(exc).__name__ == "TimeoutError":
        why = f"the database did not answer within {bound:g}s"
        return SqlUnavailable(resource, why, detail=_text(driver), outage=True)
    not_now = _NOT_NOW.get(code) or _NOT_NOW.get(code[:2])
    if not_now or (connecting and code):
        why = not_now or "the database refuses connections"
        detail = f"{_text(driver)} (SQLSTATE {code})"
        return SqlUnavailable(resource, why, detail=detail, outage=connecting)
    invalid = _client_side_invalid(driver)
    if invalid is not None:  # asyncpg marks its own argument checks 22000 too
        return SqlInvalidData(resource, invalid, detail=type(driver).__name__)
    if code.startswith("22"):
        why = _INVALID.get(code, "a value is not valid for its column")
        return SqlInvalidData(resource, why, detail=f"{type(driver).__name__} (SQLSTATE {code})")
    if connecting or isinstance(driver, OSError) or _lost(driver) or _sqlite_unavailable(driver):
        why = "the database cannot be reached" if connecting else "the connection was lost"
        return SqlUnavailable(resource, why, detail=_text(driver), outage=connecting)
    if getattr(exc, "connection_invalidated", False):
        return SqlUnavailable(resource, "the connection was lost", detail=_text(driver))
    return None


def _client_side_invalid(driver: BaseException) -> str | None:
    """Why the driver refused a value before sending it (asyncpg's argument checks, an
    integer past SQLite's 64 bits, text that is not UTF-8), or ``None``."""
    name = type(driver).__name__
    text = str(driver)
    if isinstance(driver, OverflowError) or "out of int" in text or "out of range" in text:
        return "a number is out of range for its column"
    if isinstance(driver, UnicodeError):
        return "a text holds a character the database cannot store"
    if "codec can't encode" in text:
        return "a text holds a character the database cannot store"
    if name == "DataError" and "invalid input for query argument" in text:
        return "a value does not have the type its column needs"
    if name == "DataError":  # sqlite3: string or blob too big
        return "a value is too large for the database"
    return None


def _lost(driver: BaseException) -> bool:
    """asyncpg's own account of a connection in no state to be used (its backend was
    killed under it: "another operation is in progress", "connection is closed")."""
    return type(driver).__module__.startswith("asyncpg") and type(driver).__name__ in (
        "InterfaceError",
        "InternalClientError",
        "ConnectionDoesNotExistError",
    )


def _sqlite_unavailable(driver: Any) -> bool:
    """sqlite3's "cannot work now" errors (locked, no file, disk)."""
    if type(driver).__name__ != "OperationalError" or not hasattr(driver, "sqlite_errorcode"):
        return False
    text = str(driver)
    return any(
        part in text
        for part in ("locked", "unable to open", "disk I/O", "readonly", "disk is full")
    )


def pool_busy(exc: BaseException) -> bool:
    """SQLAlchemy's pool timeout: every connection is in use (load, not an outage)."""
    return type(exc).__name__ == "TimeoutError" and type(exc).__module__.startswith("sqlalchemy")
