"""schemathesis on users-api, its strings widened to every code point (lone surrogates
and NUL included), on SQLite and on PostgreSQL + Redis: no 500, and no answer that
leaks a traceback, an address, SQL or a driver's name.

schemathesis itself draws strings from UTF-8 (it drops lone surrogates: "cannot be
encoded for the wire"); JSON can carry them as `\\ud800` escapes, and a hostile client
sends them, so the test widens its alphabet and sends each case itself, its body as
escaped JSON. What it asserts: never a 500, and no answer that leaks (a 429, a 415 or a
409 an operation does not document is not what this test is about).
"""

from __future__ import annotations

import json
import re
from typing import Any
from unittest import mock

import httpx
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from schemathesis.core import NotSet
from schemathesis.generation.jsonschema import context

from .servers import UsersApi
from .test_users_api import assert_sound

MAX_EXAMPLES = 30
SURROGATE = re.compile(r"\\ud[89a-f][0-9a-f]{2}")  # as an escape in JSON text


def _every_code_point(
    allow_x00: bool, codec: str | None, max_codepoint: int | None, exclude_characters: str
) -> st.SearchStrategy[str]:
    return st.characters(max_codepoint=max_codepoint, exclude_characters=exclude_characters)


def _dump(body: Any) -> str:
    # ensure_ascii (the default): a lone surrogate travels as a `\ud800` escape, the way a
    # hostile client writes it (schemathesis' own transport encodes bodies as UTF-8,
    # which cannot hold one)
    return json.dumps(body, default=str)


def send(case: Any, base: str, headers: dict[str, str]) -> httpx.Response | None:
    """Send ``case`` with httpx, its JSON body escaped; ``None`` if it cannot be sent."""
    kwargs = case.as_transport_kwargs(base_url=base, headers=headers)
    content = None if isinstance(case.body, NotSet) else _dump(case.body).encode()
    try:
        return httpx.request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs.get("params"),
            headers={**kwargs.get("headers", {}), "content-type": "application/json"},
            content=content,
            timeout=20,
        )
    except (UnicodeEncodeError, httpx.InvalidURL, httpx.LocalProtocolError):
        return None


def test_users_api_under_schemathesis_with_every_code_point(users_api: UsersApi) -> None:
    schema = schemathesis.openapi.from_url(f"{users_api.base}/openapi.json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 8
    headers = {"authorization": f"Bearer {users_api.token('2', ['user'])}"}
    sent = {"surrogates": 0, "answers": 0}
    with mock.patch.object(context, "_characters", _every_code_point):
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                response = send(case, users_api.base, headers)
                if response is None:
                    reject()  # a surrogate in the path or a header: not sendable as HTTP
                assert response.status_code != 500, response.text[:300]
                assert_sound(response)
                sent["answers"] += 1
                if not isinstance(case.body, NotSet) and SURROGATE.search(_dump(case.body)):
                    sent["surrogates"] += 1

            check()
    assert sent["surrogates"] >= 10, sent  # the widened alphabet was really sent
