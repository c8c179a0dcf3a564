"""``mongo.client``: pymongo's asyncio client; its value is the configured ``AsyncDatabase``.

Init connects and sends ``ping`` (bounded by ``connect_timeout``), so an unreachable
server fails startup clearly; dispose closes the client. pymongo's asyncio API runs on
asyncio only. pymongo is the optional extra ``assemble[mongo]``, imported only when a
client is made.

Every operation is bounded on the client side by ``timeout`` (pymongo's ``timeoutMS``:
server selection, waiting for a pooled connection and the round trip together). The
database object has no single place to translate failures, so the resource registers
an error classifier with the runtime (:meth:`runner.Runtime.add_error_classifier`):
what tasks and hooks raise from pymongo becomes ``<id>.unavailable`` (503),
``<id>.timeout`` (504) or ``<id>.invalid_data`` (422), pymongo's text in ``detail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import assembler
import runner
from runner.errors import InvalidData, ResourceTimeout, ResourceUnavailable, RunnerError

DEFAULT_URI = "mongodb://127.0.0.1:27017"


@dataclass(frozen=True)
class MongoConfig:
    """``mongo.client``'s config."""

    uri: str = assembler.option(
        DEFAULT_URI,
        doc="a MongoDB connection string (`mongodb://user:password@host:27017`, "
        "`mongodb+srv://...`); its options are passed to pymongo",
        pattern="^mongodb(\\+srv)?://",
    )
    database: str | None = assembler.option(
        None,
        doc="the database the resource's value is; default: the one the "
        "URI names (`mongodb://host/shop`)",
        minLength=1,
    )
    connect_timeout: assembler.Duration = assembler.option(
        "5s",
        doc="how long init waits for the server to answer `ping` (also "
        "pymongo's server selection and connect timeouts)",
    )
    timeout: assembler.Duration = assembler.option(
        "10s",
        doc="the longest one operation may take, all included (pymongo's "
        "`timeoutMS`); past it: `<id>.unavailable` (503)",
    )


class MongoClientError(RunnerError):
    """``mongo.client`` could not start: no server answered, a bad URI, no database name."""

    code = "mongo.client_failed"


def safe_uri(uri: str) -> str:
    """``uri`` with its password and credential parameters hidden (for messages and logs)."""
    return assembler.mask_url(uri)


def check(config: Any, report: assembler.ConfigReport) -> None:
    report.require_library("mongo.client", "pymongo", extra="mongo", library="pymongo")


async def make_client(config: MongoConfig) -> Any:
    uri = config.uri
    assembler.require_asyncio(
        MongoClientError, "mongo.client", "pymongo's asyncio client runs on asyncio only"
    )
    assembler.require_library(
        "mongo.client", "pymongo", extra="mongo", library="pymongo", error=MongoClientError
    )
    import pymongo
    from pymongo import AsyncMongoClient
    from pymongo.errors import ConfigurationError, PyMongoError

    connect_ms = round(config.connect_timeout * 1000)
    timeout_ms = round(config.timeout * 1000)
    try:
        client: Any = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=connect_ms,
            connectTimeoutMS=connect_ms,
            timeoutMS=timeout_ms,
        )
    except (ConfigurationError, ValueError) as exc:
        raise MongoClientError(
            f"mongo.client cannot use {safe_uri(uri)!r}: {exc}",
            hint="write mongodb://user:password@host:27017/database",
        ) from None
    try:
        name = config.database
        try:
            database = client[name] if name else client.get_default_database()
        except ConfigurationError:
            raise MongoClientError(
                f"mongo.client: {safe_uri(uri)!r} names no database and `database` is not set",
                hint="set `database`, or end the URI with /name",
            ) from None
        try:
            with pymongo.timeout(connect_ms / 1000):  # timeoutMS would allow `timeout`
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
    rt = runner.current_runtime.try_use()
    if rt is not None:
        resource = getattr(runner.current_resource.try_use(), "id", "mongo")
        rt.add_error_classifier(partial(classify, resource, timeout_ms / 1000))
    return database


def classify(resource: str, timeout: float, exc: Exception) -> Exception | None:
    """pymongo's failure ``exc`` as a classified error, or ``None`` (not pymongo's, or
    not one of these: a duplicate key stays pymongo's, for the task to handle)."""
    module = type(exc).__module__
    if not module.startswith(("pymongo", "bson")):
        return None
    from pymongo import errors

    first = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {first[0][:300]}" if first else type(exc).__name__
    if isinstance(exc, errors.ExecutionTimeout):
        return ResourceTimeout(
            resource, timeout, "the server stopped an operation at its time limit", detail=detail
        )
    if isinstance(exc, errors.ServerSelectionTimeoutError):
        return ResourceUnavailable(resource, "MongoDB cannot be reached", detail=detail)
    if isinstance(exc, errors.NetworkTimeout | errors.WaitQueueTimeoutError) or (
        isinstance(exc, errors.PyMongoError) and exc.timeout
    ):
        why = f"MongoDB did not answer within {timeout:g}s"
        return ResourceUnavailable(resource, why, detail=detail)
    if isinstance(exc, errors.ConnectionFailure):
        return ResourceUnavailable(resource, "MongoDB cannot be reached", detail=detail)
    if isinstance(exc, errors.DocumentTooLarge) or module.startswith("bson"):
        return InvalidData(
            resource, "a document cannot be stored (too large or not valid BSON)", detail=detail
        )
    return None


async def close_client(database: Any) -> None:
    await database.client.close()


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="mongo.client",
            kind="resource",
            config=MongoConfig,
            init=make_client,
            dispose=close_client,
            check=check,
            description="a pymongo AsyncDatabase (asyncio only), pinged at init",
        )
    ]
