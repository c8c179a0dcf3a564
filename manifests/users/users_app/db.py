"""An in-memory user table (a stand-in for a real database resource)."""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any


class Users:
    def __init__(self, seed: list[dict[str, Any]]) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        for row in seed:
            self.add(row["name"], row["email"])

    def add(self, name: str, email: str) -> dict[str, Any]:
        user = {"id": str(next(self._ids)), "name": name, "email": email}
        self.rows[user["id"]] = user
        return user


def make_db(config: dict[str, Any]) -> Users:
    return Users(list(config.get("seed") or []))


def close_db(db: Users) -> None:
    # A marker line for the shutdown test: disposal happens after the last response.
    print(f"users_app: db disposed at {time.time():.6f}", file=sys.stderr, flush=True)
