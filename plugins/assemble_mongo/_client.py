"""``mongo.client``: pymongo's asyncio client; its value is the configured ``AsyncDatabase``.

Init connects and sends ``ping`` (bounded by ``connect_timeout``), so an unreachable
server fails startup clearly; dispose closes the client. pymongo's asyncio API runs on
asyncio only. pymongo is the optional extra ``assemble[mongo]``, imported only when a
client is made.
"""

from __future__ import annotations

from typing import Any

import assembler
from runner.errors import RunnerError

DEFAULT_URI = "mongodb://127.0.0.1:27017"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "uri": {
            "type": "string",
            "pattern": "^mongodb(\\+srv)?://",
            "default": DEFAULT_URI,
            "description": "a MongoDB connection string (`mongodb://user:password@host:27017`, "
            "`mongodb+srv://...`); its options are passed to pymongo",
        },
        "database": {
            "type": "string",
            "minLength": 1,
            "description": "the database the resource's value is; default: the one the "
            "URI names (`mongodb://host/shop`)",
        },
        "connect_timeout": {
            **assembler.DURATION,
            "default": "5s",
            "description": "how long init waits for the server to answer `ping` (also "
            "pymongo's server selection timeout)",
        },
    },
    "additionalProperties": False,
}


class MongoClientError(RunnerError):
    """``mongo.client`` could not start: no server answered, a bad URI, no database name."""

    code = "mongo.client_failed"


def safe_uri(uri: str) -> str:
    """``uri`` with its password replaced by ``***`` (everything between the user's ``:``
    and the last ``@`` before the hosts: a password may hold an unescaped ``@``)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    hosts_start = rest.find("/")
    authority = rest if hosts_start < 0 else rest[:hosts_start]
    tail = "" if hosts_start < 0 else rest[hosts_start:]
    if "@" not in authority:
        return uri
    creds, _, hosts = authority.rpartition("@")
    user = creds.split(":", 1)[0]
    shown = f"{user}:***" if ":" in creds else user
    return f"{scheme}{sep}{shown}@{hosts}{tail}"


def check(config: Any, report: assembler.ConfigReport) -> None:
    try:
        import pymongo  # noqa: F401
    except ImportError:
        report(
            "mongo.client needs pymongo, which is not installed",
            hint='install assemble[mongo] (pip install "assemble[mongo]")',
        )


async def make_client(config: Any) -> Any:
    config = dict(config or {})
    uri = str(config.get("uri", DEFAULT_URI))
    assembler.require_asyncio(
        MongoClientError, "mongo.client", "pymongo's asyncio client runs on asyncio only"
    )
    try:
        from pymongo import AsyncMongoClient
        from pymongo.errors import ConfigurationError, PyMongoError
    except ImportError:
        raise MongoClientError(
            "mongo.client needs pymongo, which is not installed",
            hint='install assemble[mongo] (pip install "assemble[mongo]")',
        ) from None
    timeout_ms = round(assembler.duration(config.get("connect_timeout", "5s")) * 1000)
    try:
        client: Any = AsyncMongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
        )
    except (ConfigurationError, ValueError) as exc:
        raise MongoClientError(
            f"mongo.client cannot use {safe_uri(uri)!r}: {exc}",
            hint="write mongodb://user:password@host:27017/database",
        ) from None
    try:
        name = config.get("database")
        try:
            database = client[name] if name else client.get_default_database()
        except ConfigurationError:
            raise MongoClientError(
                f"mongo.client: {safe_uri(uri)!r} names no database and `database` is not set",
                hint="set `database`, or end the URI with /name",
            ) from None
        try:
            await client.admin.command("ping")
        except PyMongoError as exc:
            raise MongoClientError(
                f"mongo.client cannot reach MongoDB at {safe_uri(uri)}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                hint="start MongoDB, or fix `uri` (host, port, credentials)",
            ) from None
    except BaseException:
        await client.close()
        raise
    return database


async def close_client(database: Any) -> None:
    await database.client.close()


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="mongo.client",
            kind="resource",
            config_schema=SCHEMA,
            init=make_client,
            dispose=close_client,
            check=check,
            description="a pymongo AsyncDatabase (asyncio only), pinged at init",
        )
    ]
