"""``mongo.client``: pymongo's asyncio client.

No MongoDB server can be installed on this machine: the round-trip tests run against a
real server when ``MONGO_URL`` is set (``mongodb://host:27017``) and are skipped with
that reason otherwise. What needs no server runs everywhere: an unreachable server
fails startup within ``connect_timeout`` with the password hidden, a URI without a
database is refused, trio fails clearly, and validation reads the URI.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

import runner

from ._apps import app, problems

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


CODE = """
async def put(input, db):
    result = await db[input["collection"]].insert_one({"name": input["name"]})
    return str(result.inserted_id)

async def names(input, db):
    return [d["name"] async for d in db[input["collection"]].find({}, {"_id": 0}).sort("name")]

async def drop(input, db):
    await db.drop_collection(input["collection"])
"""

MANIFEST = """
assemble: 1
id: mongoapp
resources:
  db:
    use: mongo.client
    config: CONFIG
tasks:
  put: {run: mongo_code:put, dependencies: {db: db}}
  names: {run: mongo_code:names, dependencies: {db: db}}
  drop: {run: mongo_code:drop, dependencies: {db: db}}
"""


def mongo_app(tmp_path: Path, config: str) -> runner.Resource:
    return app(tmp_path, MANIFEST.replace("CONFIG", config), mongo_code=CODE)


@pytest.fixture
def mongo_url() -> str:
    url = os.environ.get("MONGO_URL")
    if not url:
        pytest.skip(
            "no MongoDB server: set MONGO_URL=mongodb://host:27017 to run the round-trip "
            "tests (none can be installed on this machine)"
        )
    return url


async def test_a_round_trip_against_a_real_server(tmp_path: Path, mongo_url: str) -> None:
    collection = f"c_{uuid.uuid4().hex[:10]}"
    config = f'{{uri: "{mongo_url}", database: assemble_test}}'
    async with runner.run(mongo_app(tmp_path, config)) as rt:
        try:
            await rt.run_task("put", {"collection": collection, "name": "grace"})
            await rt.run_task("put", {"collection": collection, "name": "ada"})
            assert await rt.run_task("names", {"collection": collection}) == ["ada", "grace"]
        finally:
            await rt.run_task("drop", {"collection": collection})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_server_fails_startup_in_time_without_the_password(
    tmp_path: Path,
) -> None:
    port = closed_port()
    config = f'{{uri: "mongodb://app:hunter2@127.0.0.1:{port}/shop", connect_timeout: 500ms}}'
    start = time.monotonic()
    with pytest.raises(runner.errors.ResourceInitError) as caught:
        async with runner.run(mongo_app(tmp_path, config)):
            pass
    assert time.monotonic() - start < 5  # bounded by connect_timeout (0.5 s)
    message = str(caught.value.__cause__)
    assert message.startswith(
        f"mongo.client cannot reach MongoDB at mongodb://app:***@127.0.0.1:{port}/shop:"
    )
    assert "hunter2" not in message and "start MongoDB" in message


async def test_a_uri_without_a_database_needs_the_database_key(tmp_path: Path) -> None:
    config = f'{{uri: "mongodb://127.0.0.1:{closed_port()}", connect_timeout: 500ms}}'
    with pytest.raises(runner.errors.ResourceInitError) as caught:
        async with runner.run(mongo_app(tmp_path, config)):
            pass
    assert "names no database and `database` is not set" in str(caught.value.__cause__)


def test_on_trio_init_fails_clearly(tmp_path: Path) -> None:
    import trio

    async def start() -> None:
        async with runner.run(mongo_app(tmp_path, "{database: x}")):
            pass

    with pytest.raises(runner.errors.ResourceInitError) as caught:
        trio.run(start)
    assert "needs the asyncio backend" in str(caught.value.__cause__)


def test_validate_reads_the_uri(tmp_path: Path) -> None:
    manifest = """
    assemble: 1
    id: v
    resources:
      db: {use: mongo.client, config: {uri: "postgres://h/db"}}
    """
    ((code, line, _, message),) = problems(tmp_path, manifest)
    assert (code, line) == ("ASM603", 4)
    assert "does not match" in message and "mongodb" in message


def test_passwords_are_hidden_in_every_shape_of_uri() -> None:
    from assemble_mongo._client import safe_uri

    assert safe_uri("mongodb://app:S3CR@T@db:27017/shop") == "mongodb://app:***@db:27017/shop"
    assert safe_uri("MONGODB://app:S3CRET@db/x") == "MONGODB://app:***@db/x"
    assert (
        safe_uri("mongodb://a:b@h1,h2/db?replicaSet=r") == "mongodb://a:***@h1,h2/db?replicaSet=r"
    )
    assert safe_uri("mongodb+srv://user@cluster/db") == "mongodb+srv://user@cluster/db"
    assert safe_uri("mongodb://db:27017") == "mongodb://db:27017"


# -- classified failures: pymongo's errors typed by the resource (no server needed) ----


@pytest.mark.parametrize(
    ("make", "code", "status", "why"),
    [
        (
            lambda e: e.ServerSelectionTimeoutError("10.1.2.3:27017: [Errno 111] refused"),
            "docs.unavailable",
            503,
            "'docs' is unavailable: MongoDB cannot be reached",
        ),
        (
            lambda e: e.AutoReconnect("10.1.2.3:27017: connection closed"),
            "docs.unavailable",
            503,
            "'docs' is unavailable: MongoDB cannot be reached",
        ),
        (
            lambda e: e.NetworkTimeout("10.1.2.3:27017: timed out"),
            "docs.unavailable",
            503,
            "'docs' is unavailable: MongoDB did not answer within 10s",
        ),
        (
            lambda e: e.ExecutionTimeout("operation exceeded time limit", 50),
            "docs.timeout",
            504,
            "'docs' timed out: the server stopped an operation at its time limit",
        ),
        (
            lambda e: e.DocumentTooLarge("BSON document too large"),
            "docs.invalid_data",
            422,
            "'docs' refused the data: a document cannot be stored (too large or not valid BSON)",
        ),
    ],
)
def test_pymongo_failures_are_classified_without_hosts(
    make: object, code: str, status: int, why: str
) -> None:
    from pymongo import errors

    from assemble_mongo._client import classify

    found = classify("docs", 10.0, make(errors))  # type: ignore[operator]
    assert found is not None
    assert (found.code, found.http_status, found.message) == (code, status, why)  # type: ignore[attr-defined]


def test_other_errors_are_left_as_they_are() -> None:
    import bson
    from pymongo import errors

    from assemble_mongo._client import classify

    assert classify("docs", 10.0, errors.DuplicateKeyError("dup", 11000)) is None
    assert classify("docs", 10.0, KeyError("x")) is None
    bad = classify("docs", 10.0, bson.errors.InvalidDocument("key 'a\x00' has a NUL"))
    assert bad is not None and bad.code == "docs.invalid_data"  # type: ignore[attr-defined]
