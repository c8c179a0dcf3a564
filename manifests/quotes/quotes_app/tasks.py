"""The app's tasks: plain functions; what they need arrives as keyword arguments."""

from __future__ import annotations

import logging
from typing import Any

import runner

from .store import Store, Upstream


async def get_quote(input: dict[str, Any], quotes: Store) -> dict[str, Any]:
    quote = quotes.quotes.get(input["id"])
    if quote is None:
        raise NotFound(f"no quote with id {input['id']}")
    return quote


async def popular(input: Any, quotes: Store) -> list[dict[str, Any]]:
    return sorted(quotes.quotes.values(), key=lambda q: len(q["text"]))[:2]


async def fetch_remote(input: Any, upstream: Upstream) -> dict[str, Any]:
    return await upstream.fetch()


async def add_quote(
    input: dict[str, Any], quotes: Store, auth: runner.AsyncContext, log: logging.Logger
) -> dict[str, Any]:
    who = auth.use().subject
    quote = quotes.add(input["text"], who)
    log.info("quote added", extra={"quote_id": quote["id"], "by": who})
    return quote


async def whoami(input: Any, auth: runner.AsyncContext) -> dict[str, Any]:
    principal = auth.use()
    return {"subject": principal.subject, "roles": list(principal.roles)}


def by_user(input: Any) -> str:
    """rate_limit key: one bucket per user (the auth principal is set by then)."""
    from assemble_auth import auth

    principal = auth.try_use()
    return principal.subject if principal is not None else "anonymous"


class NotFound(runner.errors.RunnerError):
    code = "quotes.not_found"
    http_status = 404
