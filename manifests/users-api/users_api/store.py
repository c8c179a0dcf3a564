"""The data layer: tables (SQLAlchemy Core, portable between SQLite and PostgreSQL) and
a small repository over the ``sql.engine`` resource."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from runner.errors import RunnerError

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("roles", String(200), nullable=False, default="user"),
    Column("created_at", String(40), nullable=False),
    sqlite_autoincrement=True,  # never reuse a deleted user's id (its tokens name it)
)
settings = Table(
    "settings",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("theme", String(20), nullable=False),
    Column("notifications", Boolean, nullable=False),
)
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    sqlite_autoincrement=True,
)
posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    sqlite_autoincrement=True,
)

_hasher = PasswordHasher()  # argon2id with the library's defaults (~0.1-0.2 s, 64 MiB a hash)


def hash_password(password: str) -> str:
    """A task (app.yaml: `hash_password`): slow and memory-hungry on purpose, so app.yaml
    bounds how many run at once (the `hashing` concurrency limit); a sync function, so
    the runtime runs it in a worker thread and the event loop keeps serving."""
    return _hasher.hash(password)


def verify_password(input: dict[str, str]) -> bool:
    """A task (app.yaml: `verify_password`), sharing `hash_password`'s limit."""
    try:
        return bool(_hasher.verify(input["hash"], input["password"]))
    except (VerificationError, InvalidHashError):
        return False


Hash = Callable[[str], Awaitable[str]]
Verify = Callable[[dict[str, str]], Awaitable[bool]]


class EmailTaken(RunnerError):
    """A typed error: the HTTP edge answers 409 with this code."""

    code = "users.email_taken"
    http_status = 409


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def public(row: Any) -> dict[str, Any]:
    """A user as the API shows it: never any password material."""
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "roles": row.roles.split(","),
        "created_at": row.created_at,
    }


class Store:
    """The app's queries. One instance per app, over the engine's pool; passwords are
    hashed and checked through the (bounded) hashing tasks."""

    def __init__(self, engine: AsyncEngine, hash: Hash, verify: Verify) -> None:
        self.engine, self.hash, self.verify = engine, hash, verify

    async def create_tables(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def add_user(
        self, email: str, name: str, password: str, roles: str = "user"
    ) -> dict[str, Any]:
        values = {
            "email": email.lower(),
            "name": name,
            "password_hash": await self.hash(password),
            "roles": roles,
            "created_at": now(),
        }
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(insert(users).values(**values))
                (user_id,) = result.inserted_primary_key or (0,)
        except IntegrityError:
            raise EmailTaken(f"the email {email!r} is already registered") from None
        return await self.user(int(user_id)) or {}

    async def user(self, user_id: int) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return public(row) if row is not None else None

    async def check_password(self, email: str, password: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            query = select(users).where(users.c.email == email.lower())
            row = (await conn.execute(query)).first()
        if row is None:
            await self.hash(password)  # the same work either way: no timing oracle
            return None
        if not await self.verify({"hash": row.password_hash, "password": password}):
            return None
        return public(row)

    async def delete_user(self, user_id: int) -> bool:
        async with self.engine.begin() as conn:
            await conn.execute(delete(settings).where(settings.c.user_id == user_id))
            await conn.execute(delete(posts).where(posts.c.user_id == user_id))
            result = await conn.execute(delete(users).where(users.c.id == user_id))
        return bool(result.rowcount)

    async def add_settings(self, user_id: int, theme: str, notifications: bool) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(settings).values(user_id=user_id, theme=theme, notifications=notifications)
            )

    async def settings_of(self, user_id: int) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            query = select(settings).where(settings.c.user_id == user_id)
            row = (await conn.execute(query)).first()
        return {"theme": row.theme, "notifications": row.notifications} if row else None

    async def queue_mail(self, recipient: str, subject: str, body: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(outbox).values(
                    recipient=recipient, subject=subject, body=body, created_at=now()
                )
            )

    async def mails(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).all()
        return [dict(r._mapping) for r in rows]

    async def add_post(self, user_id: int, title: str, body: str) -> dict[str, Any]:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(posts).values(user_id=user_id, title=title, body=body, created_at=now())
            )
            (post_id,) = result.inserted_primary_key or (None,)
        return {"id": post_id, "user_id": user_id, "title": title, "body": body}


async def open_store(
    config: dict[str, Any], db: AsyncEngine, hash_password: Hash, verify_password: Verify
) -> Store:
    """Init: create the tables, and the default admin at first start (dev only)."""
    store = Store(db, hash_password, verify_password)
    await store.create_tables()
    admin = config.get("admin") or {}
    email, password = admin.get("email"), admin.get("password")
    if email and password:
        async with db.connect() as conn:
            query = select(users.c.id).where(users.c.email == str(email).lower())
            exists = (await conn.execute(query)).first()
        if exists is None:
            await store.add_user(str(email), "Admin", str(password), roles="admin,user")
    return store
