"""The hostile suite's shared pieces: users-api servers on SQLite and PostgreSQL, and the
log book whose last check reads every log the suite made for a secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import LogBook, UsersApi, drop, start


@pytest.fixture(scope="session")
def log_book() -> Iterator[LogBook]:
    """Secrets given to or minted by the servers of the suite; when the session ends,
    no log of theirs may hold one (nor a password hash, nor a token): a leak fails it."""
    book = LogBook()
    yield book
    leaks = book.leaks()
    assert not leaks, "secrets reached the logs:\n" + "\n".join(leaks)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def users_api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    log_book: LogBook,
) -> Iterator[UsersApi]:
    """users-api on each store, shared by the suite; generous login limits (a test of
    the limits starts its own)."""
    if request.param == "postgresql":
        request.getfixturevalue("_postgres_answers")  # skipped (failed on CI) when down
        request.getfixturevalue("_redis_answers")
    folder: Path = tmp_path_factory.mktemp(f"users-api-{request.param}")
    app = start(
        request.param, folder, log_book, LOGINS_PER_CLIENT="1000000", LOGINS_PER_EMAIL="1000000"
    )
    yield app
    drop(app)
    assert app.proc.returncode == 0, app.log.read_text()[-4000:]
