"""users-api as an attacker meets it, on SQLite and on PostgreSQL + Redis (real servers,
real HTTP): no request from a stranger ends in a 500, a leak or a hang.

The cases are examples of classes (DESIGN §12): text no store keeps, numbers past a
column, tokens signed right but naming nobody, roles that changed; then hypothesis
sends arbitrary JSON to every route, with and without a token.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .servers import LogBook, UsersApi, drop, start

LEAKS = re.compile(
    r"Traceback|File \"|127\.0\.0\.1:\d|:5432|:6379|SELECT |INSERT |sqlalchemy|asyncpg|"
    r"sqlite3|redis\.exceptions|argon2|\$argon2"
)


def assert_sound(answer: httpx.Response) -> None:
    """Never a 5xx but a 503; never a traceback, an address, SQL or a driver's name; a
    small body."""
    assert answer.status_code < 500 or answer.status_code == 503, answer.text[:500]
    assert not LEAKS.search(answer.text), answer.text[:500]
    assert len(answer.content) < 16_384


def fields(answer: httpx.Response) -> list[str]:
    return [f["field"] for f in answer.json()["error"].get("fields", [])]


def raw_post(app: UsersApi, path: str, body: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{app.base}{path}",
        content=body.encode(),
        headers={"content-type": "application/json", **headers},
        timeout=20,
    )


# -- text that cannot be stored: refused at the edge, the field named ------------------

SIGNUP = {"email": "x@example.com", "name": "Ada", "password": "correct-horse-battery"}


@pytest.mark.parametrize("bad", ["\\ud800", "a\\u0000b", "\\udfff\\ud800"])
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/users", SIGNUP, "name"),
        ("/users", SIGNUP, "email"),
        ("/users", SIGNUP, "password"),
        ("/auth/token", {"email": "admin@example.com", "password": "x"}, "email"),
        ("/auth/token", {"email": "admin@example.com", "password": "x"}, "password"),
    ],
)
def test_text_no_store_keeps_is_refused_naming_the_field(
    users_api: UsersApi, bad: str, path: str, body: dict[str, str], field: str
) -> None:
    text = json.dumps(body).replace(json.dumps(body[field]), f'"{bad}"')
    answer = raw_post(users_api, path, text)
    assert_sound(answer)
    assert answer.status_code == 422, answer.text
    assert fields(answer) == [field]


def test_a_post_title_no_store_keeps_is_refused(users_api: UsersApi) -> None:
    token = users_api.token("1", ["admin"])  # the admin's id
    for bad in ("\\ud800", "x\\u0000"):
        answer = raw_post(
            users_api,
            "/posts",
            f'{{"title": "{bad}", "body": "b"}}',
            authorization=f"Bearer {token}",
        )
        assert_sound(answer)
        assert answer.status_code == 422 and fields(answer) == ["title"]


# -- numbers and ids past what the column holds ------------------------------------


@pytest.mark.parametrize(
    "uid", [str(2**31), str(2**31 + 1), str(2**63), str(2**64), "1" + "0" * 30, "9" * 5000]
)
@pytest.mark.parametrize("route", ["/users/{}", "/users/{}/settings"])
def test_ids_past_the_column_are_422_not_a_driver_error(
    users_api: UsersApi, uid: str, route: str
) -> None:
    admin = {"authorization": f"Bearer {users_api.token('1', ['admin'])}"}
    for method in ("GET", "DELETE") if route == "/users/{}" else ("GET",):
        answer = httpx.request(method, users_api.base + route.format(uid), headers=admin)
        assert_sound(answer)
        assert answer.status_code == 422, answer.text
        assert fields(answer) == ["id"]


@pytest.mark.parametrize("uid", ["0", "-1", "abc", "1.5", "%00", "%F0%9F%98%80", "1e3"])
def test_ids_that_are_not_ids_are_4xx(users_api: UsersApi, uid: str) -> None:
    admin = {"authorization": f"Bearer {users_api.token('1', ['admin'])}"}
    answer = httpx.get(f"{users_api.base}/users/{uid}", headers=admin)
    assert_sound(answer)
    assert 400 <= answer.status_code < 500


# -- tokens: signed right, naming nobody; roles that changed since -------------------


@pytest.mark.parametrize(
    "sub",
    ["ada", "", " 1", "1 ", "0", "-1", "99999999999", "1e3", "\u0661", "\u00b2", "1" * 400],
)
def test_a_signed_token_naming_no_user_is_401(users_api: UsersApi, sub: str) -> None:
    token = users_api.token(sub, ["admin"])
    for method, path in [("GET", "/users/1"), ("GET", "/admin/outbox"), ("DELETE", "/users/7")]:
        answer = httpx.request(
            method, users_api.base + path, headers={"authorization": f"Bearer {token}"}
        )
        assert_sound(answer)
        assert answer.status_code == 401, (sub, answer.text)


def test_a_demoted_admin_loses_the_admin_routes_at_once(users_api: UsersApi) -> None:
    email = f"boss-{time.monotonic_ns()}@example.com"
    password = users_api.book.secret(f"pw-{time.monotonic_ns()}-boss")
    created = httpx.post(
        f"{users_api.base}/users", json={"email": email, "name": "Boss", "password": password}
    )
    assert created.status_code == 201, created.text
    users_api.sql(f"UPDATE users SET roles = 'admin,user' WHERE email = '{email}'")
    token = users_api.login(email, password)  # the token says: admin
    assert httpx.get(f"{users_api.base}/admin/outbox", headers=token).status_code == 200
    users_api.sql(f"UPDATE users SET roles = 'user' WHERE email = '{email}'")
    for method, path in [("GET", "/admin/outbox"), ("DELETE", "/users/1")]:
        answer = httpx.request(method, users_api.base + path, headers=token)
        assert answer.status_code == 403, answer.text  # the database says: no longer


# -- arbitrary JSON into every route, with and without a token ------------------------

ROUTES = [
    ("GET", "/health"),
    ("POST", "/users"),
    ("POST", "/auth/token"),
    ("GET", "/users/{id}"),
    ("GET", "/users/{id}/settings"),
    ("DELETE", "/users/{id}"),
    ("POST", "/posts"),
    ("GET", "/admin/outbox"),
]

text = st.text(st.characters(codec=None), max_size=40) | st.sampled_from(
    ["\ud800", "\x00", "a\x00", "\udfff", "é" * 300, "x" * 5000]
)
numbers = st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.just(10**400)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
    max_leaves=12,
)
field_names = st.sampled_from(["email", "name", "password", "title", "body", "id", "token"])
bodies = st.one_of(json_values, st.dictionaries(field_names | text, json_values, max_size=6))
ids = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(st.characters(codec=None), min_size=1, max_size=12),
)


def _dump(body: Any) -> str:
    # allow_nan: NaN and Infinity as a careless or hostile client writes them; ensure_ascii
    # (the default): lone surrogates as \ud800 escapes (they cannot be UTF-8)
    return json.dumps(body, allow_nan=True)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    route=st.sampled_from(ROUTES),
    body=bodies,
    uid=ids,
    query=st.dictionaries(field_names, text, max_size=2),
    who=st.sampled_from(["nobody", "user", "admin", "garbage"]),
)
def test_arbitrary_json_into_every_route_never_breaks_the_server(
    users_api: UsersApi, route: tuple[str, str], body: Any, uid: str, query: Any, who: str
) -> None:
    method, path = route
    headers = {"content-type": "application/json"}
    if who == "garbage":
        headers["authorization"] = "Bearer eyJ.garbage.x"
    elif who != "nobody":
        sub = "1" if who == "admin" else "2"
        headers["authorization"] = f"Bearer {users_api.token(sub, [who])}"
    # every code point, surrogates too, percent-encoded as a hostile client would send it
    segment = quote(uid, safe="", errors="surrogatepass") or "x"
    params = "&".join(f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in query.items())
    url = users_api.base + path.replace("{id}", segment) + (f"?{params}" if params else "")
    answer = httpx.request(method, url, content=_dump(body).encode(), headers=headers, timeout=20)
    assert_sound(answer)


def test_short_and_plain_word_secrets_never_garble_the_log(
    tmp_path: Path, log_book: LogBook
) -> None:
    """Secrets that are ordinary words (a careless ADMIN_PASSWORD, a JWT_SECRET of one
    repeated word) are masked where they are the value, never inside messages."""
    app = start(
        "sqlite",
        tmp_path / "app",
        log_book,
        ADMIN_PASSWORD="required",
        JWT_SECRET="passwordpasswordpasswordpassword",
    )
    try:
        answer = httpx.post(f"{app.base}/users", json={"email": "w@example.com", "name": "W"})
        assert answer.status_code == 422
        assert app.login("admin@example.com", "required")  # the secret works as given
    finally:
        drop(app)
    log = app.log.read_text()
    assert "invalid input for 'register': password: is required" in log
    assert "***" not in log.replace('"password": "***"', "")  # nothing else was masked
