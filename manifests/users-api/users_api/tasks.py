"""The routes and the event hooks: plain functions. app.yaml adds HTTP routes, auth,
validation, caching, rate limiting and logging around them."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import httpx
import jwt

import runner
from assemble_auth import Principal, auth
from runner.errors import Forbidden, RunnerError, Unauthorized

from .mailer import Mailer
from .store import Store


class NotFound(RunnerError):
    code = "users.not_found"
    http_status = 404


def health(input: Any) -> dict[str, Any]:
    return {"status": "ok"}


async def register(input: dict[str, Any], store: Store, user_registered: Any) -> dict[str, Any]:
    user = await store.add_user(input["email"], input["name"], input["password"])
    await user_registered(user)
    return user


async def issue_token(
    input: dict[str, Any], store: Store, tokens: dict[str, Any]
) -> dict[str, Any]:
    user = await store.check_password(input["email"], input["password"])
    if user is None:
        raise Unauthorized("wrong email or password", hint="check both; register with POST /users")
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": str(user["id"]),
        "roles": user["roles"],
        "iat": now,
        "exp": now + dt.timedelta(seconds=tokens["ttl"]),
    }
    return {"token": jwt.encode(claims, tokens["secret"], algorithm="HS256")}


def _principal() -> Principal:
    return auth.use()  # type: ignore[no-any-return]


#: User ids are PostgreSQL INTEGERs (the column's range).
MAX_ID = 2**31 - 1


async def _caller(store: Store) -> dict[str, Any]:
    """The user the token names, as stored now; a token of a deleted user, or whose `sub`
    is not one of our ids (signed with our secret, but not by us), is refused (401)."""
    subject = _principal().subject
    digits = (
        subject.isascii() and subject.isdecimal() and len(subject) <= 10
    )  # ASCII digits only, not other scripts
    user_id = int(subject) if digits else 0
    me = await store.user(user_id) if 1 <= user_id <= MAX_ID else None
    if me is None:
        raise Unauthorized("the token's user does not exist", hint="log in again")
    return me


async def _admin(store: Store) -> dict[str, Any]:
    """The caller, if the database (not the token, which outlives a demotion) says admin."""
    me = await _caller(store)
    if "admin" not in me["roles"]:
        raise Forbidden("admins only", hint="ask an admin for the role")
    return me


async def _own_or_admin(store: Store, user_id: int) -> None:
    me = await _caller(store)
    if me["id"] != user_id and "admin" not in me["roles"]:
        raise Forbidden("you may only read your own user", hint="ask an admin")


async def get_user(input: dict[str, Any], store: Store) -> dict[str, Any]:
    await _own_or_admin(store, input["id"])
    user = await store.user(input["id"])
    if user is None:
        raise NotFound(f"no user {input['id']}", hint="register with POST /users")
    return user


async def get_settings(input: dict[str, Any], store: Store) -> dict[str, Any]:
    await _own_or_admin(store, input["id"])
    found = await store.settings_of(input["id"])
    if found is None:
        raise NotFound(f"no settings for user {input['id']}")
    return found


async def delete_user(input: dict[str, Any], store: Store, user_deleted: Any) -> None:
    await _admin(store)  # an admin now, not only when the token was issued
    if not await store.delete_user(input["id"]):
        raise NotFound(f"no user {input['id']}")
    await user_deleted({"id": input["id"]})  # user_cache's invalidate_on: stale everywhere


async def create_post(input: dict[str, Any], store: Store) -> dict[str, Any]:
    me = await _caller(store)
    return await store.add_post(me["id"], input["title"], input["body"])


def per_user(input: Any) -> str:
    """rate_limit's key: one bucket per authenticated user."""
    return _principal().subject


def client_address(input: Any) -> str:
    """rate_limit's key: one bucket per client address (as the HTTP edge sees it)."""
    return getattr(runner.current_request.try_use(), "client", "") or "(unknown)"


def login_email(input: Any) -> str:
    """rate_limit's key: one bucket per email tried (refused before any hashing)."""
    email = input.get("email") if isinstance(input, dict) else None
    return email.strip().lower()[:320] if isinstance(email, str) else "(none)"


async def outbox(input: Any, store: Store) -> list[dict[str, Any]]:
    await _admin(store)
    return await store.mails()


# -- hooks of user_registered, in order ------------------------------------------------


async def send_welcome(emission: Any, mailer: Mailer) -> None:
    user = emission.data
    await mailer.send(user["email"], "Welcome!", f"Hello {user['name']}, welcome aboard.")


async def default_settings(emission: Any, store: Store) -> None:
    await store.add_settings(emission.data["id"], theme="light", notifications=True)


async def track_signup(emission: Any, analytics: dict[str, int] | None) -> None:
    """Count signups when an `analytics` resource exists (analytics.yaml adds one)."""
    if analytics is not None:
        analytics["signups"] += 1


def make_analytics(config: Any) -> dict[str, int]:
    return {"signups": 0}


log = logging.getLogger("users_api")


async def call_webhook(emission: Any, notify_webhook: Any) -> None:
    """Best effort: the user is registered either way; a failed call is logged."""
    try:
        await notify_webhook({"event": "user_registered", "user_id": emission.data["id"]})
    except Exception as exc:
        log.warning("the signup webhook failed for user %s: %s", emission.data["id"], exc)


async def notify_webhook(input: dict[str, Any], webhook: dict[str, Any]) -> dict[str, Any]:
    """POST the event to the configured URL (retry + timeout around it in app.yaml);
    nothing to do when no URL is configured. A 4xx answer is final (not retried)."""
    if not webhook.get("url"):
        return {"sent": False}
    async with httpx.AsyncClient(timeout=webhook.get("timeout", 5)) as client:
        response = await client.post(webhook["url"], json=input)
    if response.status_code >= 500:
        response.raise_for_status()  # retried by the task's `retry`
    return {"sent": response.is_success, "status": response.status_code}


def tokens(config: dict[str, Any]) -> dict[str, Any]:
    return {"secret": config["secret"], "ttl": int(config.get("ttl", 3600))}


def webhook(config: dict[str, Any]) -> dict[str, Any]:
    return dict(config)
