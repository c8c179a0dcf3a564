"""Cache keys: one user's cached result is never served to another."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import runner
from assemble_auth import auth

INVALIDATE_ON: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1},
    "uniqueItems": True,
    "description": "ids of events that make every entry of this cache stale (e.g. "
    "`user_deleted`): when one is emitted, later calls miss",
}


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _canonical_encoder() -> Callable[[Any], str]:
    """Canonical JSON (sorted keys, no spaces), built once.

    ``json.dumps`` with options makes a new encoder per call, and even a reused
    ``JSONEncoder.encode`` builds its C encoder per call: together most of a cache
    hit's cost. The C encoder is made once here (the pure-Python one where it is
    missing).
    """
    c_make = getattr(json.encoder, "c_make_encoder", None)
    if c_make is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode
    # markers=None: no cycle bookkeeping; a cyclic input ends in RecursionError, which
    # cache_key treats like any input that cannot be keyed.
    encode = c_make(
        None, _refuse, json.encoder.py_encode_basestring, None, ":", ",", True, False, False
    )

    string = json.encoder.encode_basestring  # the C escaper, like the encoder's own

    def canonical(value: Any) -> str:
        kind = type(value)
        if kind is str:  # ids are the common input: skip the encoder's machinery
            return string(value)
        if kind is int:
            return int.__repr__(value)
        return "".join(encode(value, 0))

    return canonical


_CANONICAL = _canonical_encoder()


def cache_key(task_id: str, input: Any, key: Callable[[Any], str] | None) -> str | None:
    """The key of one call, or ``None`` when the input cannot be keyed (then nothing is cached).

    With a ``key`` function its result is the key (its author decides what varies it).
    By default the key is the canonical JSON of the input plus, when an ``auth``
    principal is present, its subject.
    """
    if key is not None:
        return f"{task_id}\x00{key(input)}"
    try:
        text = _CANONICAL(input)
    except (TypeError, ValueError, RecursionError):
        return None
    principal = auth.try_use()
    if principal is None:
        request = runner.current_request.try_use()
        if request is not None and request.header("authorization"):
            # Credentials but no principal yet: the cache runs outside auth.jwt, and a
            # hit would answer before the token is checked. Never cache such a call.
            return None
        return f"{task_id}\x00\x00{text}"
    return f"{task_id}\x00{principal.subject}\x00{text}"


def json_text(value: Any) -> str | None:
    """The JSON text of ``value`` if it survives a round trip unchanged, else ``None``.

    Tuples and int keys come back as lists and strings: such results are not the same
    after a cache hit, so the caches keep them out (Redis) or keep the object (memory).
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None
    return text if json.loads(text) == value else None


def digest(key: str) -> str:
    """A short, fixed-length form of a key (for Redis key names)."""
    return hashlib.sha256(key.encode()).hexdigest()
