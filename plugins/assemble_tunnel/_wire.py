"""What both ends of the Runner HTTP tunnel share: id selection, the error envelope, errors.

The envelope is Runner 5.5's: ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error": {"code", "message", "id"?, "data"?, "httpCode"?}}``. A typed error (a
``RunnerError`` with an ``http_status``: the runtime's errors, or a user's subclass
that sets ``http_status`` and ``code``) travels with ``id`` (its code), ``data`` (what is needed
to rebuild it) and ``httpCode``; the client raises the same local type again where it
knows it (validation, auth, rate limit, circuit, timeout) and a :class:`RemoteError`
with the same ``code`` and ``http_status`` otherwise. Anything untyped travels as
``INTERNAL_ERROR`` / ``Internal Error``: never its text.
"""

from __future__ import annotations

import contextvars
import fnmatch
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import assembler
from runner.errors import (
    CircuitOpen,
    FieldError,
    Forbidden,
    HookError,
    RateLimited,
    RunnerError,
    TaskTimeoutError,
    Unauthorized,
    ValidationError,
)

from ._serializer import SerializerError, dump_bytes, loads

#: The id of the event being delivered here from another process (by tunnel.server or
#: tunnel.nats): a tunnel does not send that event out again (no echo loops); other
#: events its hooks emit go out as usual.
from_tunnel: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "from_tunnel", default=None
)

TOKEN_HEADER = "x-runner-token"
REQUEST_ID_HEADER = "x-runner-request-id"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
INTERNAL = {"code": "INTERNAL_ERROR", "message": "Internal Error"}
log = logging.getLogger("assemble.tunnel")
#: The failures tunnels answer, logged once per kind and place, then counted.
failures = assembler.FailureLog(log)
_GLOB = re.compile(r"[*?\[]")
#: Bounds on what an error envelope echoes (a 1 MB key or value a caller sent must not
#: come back, nor overflow a NATS message): the message and the hint, each field's
#: message, an id, and each field's path (its keys and indexes together), in
#: characters; at most MAX_FIELDS fields.
MAX_MESSAGE, MAX_FIELD_MESSAGE, MAX_KEY, MAX_FIELDS = 600, 200, 128, 20


def cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` - 1 characters and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_glob(pattern: str) -> bool:
    return bool(_GLOB.search(pattern))


def select(patterns: Sequence[str], ids: Iterable[str]) -> list[str]:
    """The ``ids`` that an entry of ``patterns`` names: an exact id, or a glob
    (``app.tasks.*``; ``*`` also crosses dots)."""
    exact = {p for p in patterns if not is_glob(p)}
    globs = [re.compile(fnmatch.translate(p)) for p in patterns if is_glob(p)]
    return sorted(i for i in ids if i in exact or any(g.match(i) for g in globs))


class TunnelError(RunnerError):
    """The tunnel itself failed: the remote refused the call, could not be reached, or
    answered something that is not the protocol. ``remote_code`` is the wire code
    (``UNAUTHORIZED``, ``FORBIDDEN``, ...) when the remote sent one."""

    code = "tunnel.failed"
    http_status = 502

    def __init__(self, message: str, *, hint: str = "", remote_code: str = "") -> None:
        super().__init__(message, hint=hint)
        self.remote_code = remote_code


class TunnelUnavailable(TunnelError):
    """The remote could not be reached (connection refused, reset, DNS)."""

    code = "tunnel.unavailable"
    http_status = 503


class RemoteError(RunnerError):
    """A typed error raised by the remote task that has no local class: same ``code``,
    ``http_status``, message and ``data`` as on the remote."""

    code = "tunnel.remote_error"

    def __init__(
        self, code: str, message: str, http_status: int | None, data: Any, *, hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code  # type: ignore[misc]  # the remote's code, per instance
        self.http_status = http_status
        self.data = data


# -- typed errors on the wire -------------------------------------------------------


def error_data(exc: BaseException) -> dict[str, Any]:
    """What the client needs to rebuild ``exc`` (always an object: Runner's JS client
    rethrows typed errors only when ``data`` is truthy)."""
    data: dict[str, Any] = {}
    hint = getattr(exc, "hint", "")
    if isinstance(hint, str) and hint:
        data["hint"] = cut(hint, MAX_MESSAGE)
    if isinstance(exc, ValidationError):
        data.update(
            what=exc.what,
            owner=exc.owner,
            errors=[
                {"path": list(e.path), "message": e.message}
                for e in map(_short, exc.errors[:MAX_FIELDS])
            ],
        )
    for name in ("task", "retry_after", "after"):
        value = getattr(exc, name, None)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            data[name] = value
    return data


def typed(exc: BaseException) -> tuple[int, dict[str, Any]] | None:
    """``(status, error)`` for a :class:`RunnerError` with an HTTP status, else ``None``.

    Only RunnerError subclasses are typed: a third-party exception that happens to
    carry ``code`` and ``http_status`` (a payment library's, say) must not pass its
    message to a caller, not even as the cause of a failed hook (a failed hook is
    answered as its cause). The message, the hint and the fields are cut short."""
    cause: BaseException | None = exc
    while isinstance(cause, HookError):
        cause = cause.__cause__
    if not isinstance(cause, RunnerError):
        return None
    exc = cause
    status = exc.http_status
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        return None
    code = exc.code or type(exc).__name__
    message = exc.message
    if isinstance(exc, ValidationError):  # told from its fields cut short
        short = [_short(e) for e in exc.errors[:MAX_FIELDS]]
        message = ValidationError(exc.what, exc.owner, short).message
    message = cut(message, MAX_MESSAGE)
    return status, {
        "code": code,
        "message": message,
        "id": code,
        "data": error_data(exc),
        "httpCode": status,
    }


def _short(error: FieldError) -> FieldError:
    """``error`` with its path (from its start: where it is) and its message cut short."""
    path: list[str | int] = []
    left = MAX_KEY
    for part in error.path:
        size = len(part if isinstance(part, str) else str(part)) + 1  # and a separator
        if size > left:
            path.append(cut(part, left) if isinstance(part, str) and left > 1 else "…")
            break
        path.append(part)
        left -= size
    return FieldError(tuple(path), cut(error.message, MAX_FIELD_MESSAGE))


def _validation(data: dict[str, Any]) -> ValidationError:
    errors = [
        FieldError(tuple(e.get("path") or ()), str(e.get("message", "")))
        for e in data.get("errors") or ()
        if isinstance(e, dict)
    ]
    return ValidationError(str(data.get("what", "input")), str(data.get("owner", "?")), errors)


_REBUILD: dict[str, Callable[[str, dict[str, Any]], BaseException]] = {
    "runner.validation": lambda m, d: _validation(d),
    "runner.unauthorized": lambda m, d: Unauthorized(m),
    "runner.forbidden": lambda m, d: Forbidden(m),
    "runner.rate_limited": lambda m, d: RateLimited(
        str(d.get("task", "?")), float(d.get("retry_after", 1))
    ),
    "runner.circuit_open": lambda m, d: CircuitOpen(
        str(d.get("task", "?")), float(d.get("retry_after", 1))
    ),
    "runner.timeout": lambda m, d: TaskTimeoutError(str(d.get("task", "?")), float(d["after"])),
}


def rebuild(error: dict[str, Any], status: int) -> BaseException:
    """The local exception for a typed ``error`` object of the envelope."""
    code = str(error.get("id") or error.get("code") or "")
    message = str(error.get("message") or "remote error")
    data = error.get("data")
    data = data if isinstance(data, dict) else {}
    build = _REBUILD.get(code)
    if build is not None:
        try:
            return build(message, data)
        except (KeyError, TypeError, ValueError):
            pass  # a malformed payload: keep what was said, untyped locally
    http = error.get("httpCode")
    http = http if isinstance(http, int) and 400 <= http <= 599 else status
    hint = data.get("hint")
    return RemoteError(code, message, http, data, hint=hint if isinstance(hint, str) else "")


def open_envelope(data: bytes) -> tuple[bool, Any] | None:
    """``(True, result)`` or ``(False, error)`` of a Runner envelope (``{ok, result}`` or
    ``{ok: false, error: {...}}``); ``None`` when ``data`` is not one."""
    try:
        envelope = loads(data)
    except SerializerError:
        return None
    if not isinstance(envelope, dict):
        return None
    ok, error = envelope.get("ok"), envelope.get("error")
    if ok is True:
        return True, envelope.get("result")
    if ok is False and isinstance(error, dict):
        return False, error
    return None


IDS: dict[str, Any] = {"type": "array", "items": {"type": "string", "minLength": 1}, "default": []}
"""The schema of a config list of ids or globs (the tunnel components)."""


def failure(exc: BaseException, what: str, rid: str) -> tuple[int, dict[str, Any]]:
    """``(status, envelope)`` answering a call that raised ``exc``: a typed error as
    itself (:func:`typed`); anything else ``INTERNAL_ERROR``, its text and traceback only
    in the log, with the request id. Server-side failures (5xx) are logged through
    :data:`failures`: an outage writes one line per interval, not one per call."""
    found = typed(exc)
    if found is not None:
        status, error = found
        if status >= 500:
            failures.failed(f"tunnel: {what}", rid, exc)
        return status, {"ok": False, "error": error}
    failures.failed(f"tunnel: {what}", rid, exc)
    return 500, {"ok": False, "error": INTERNAL}


def dump_envelope(envelope: dict[str, Any], rid: str) -> tuple[bytes, bool]:
    """``(bytes, True)``; ``(INTERNAL_ERROR's bytes, False)`` when a result has no wire
    form (logged)."""
    try:
        return dump_bytes(envelope), True
    except SerializerError as exc:
        log.error("tunnel: the answer to request %s cannot be serialized: %s", rid, exc)
        return dump_bytes({"ok": False, "error": INTERNAL}), False
