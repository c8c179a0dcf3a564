"""The app's tasks: plain functions; the manifest adds routes, auth and validation."""

from __future__ import annotations

import time
from typing import Any

import anyio

from runner.errors import RunnerError

from .db import Users


class NotFound(RunnerError):
    code = "users.not_found"
    http_status = 404


def health(input: dict[str, Any]) -> dict[str, Any]:
    return {"status": "ok", "timestamp": int(time.time() * 1000)}


def get_user(input: dict[str, Any], db: Users) -> dict[str, Any]:
    user = db.rows.get(input["id"])
    if user is None:
        raise NotFound(f"no user {input['id']!r}", hint="create it with POST /users")
    return user


def create_user(input: dict[str, Any], db: Users) -> dict[str, Any]:
    return db.add(input["name"], input["email"])


async def slow(input: dict[str, Any]) -> dict[str, Any]:
    """Sleeps `seconds` (at most 5): for trying graceful shutdown by hand."""
    await anyio.sleep(min(float(input.get("seconds", 1)), 5.0))
    return {"slept": input.get("seconds", 1), "n": input.get("n"), "finished_at": time.time()}
