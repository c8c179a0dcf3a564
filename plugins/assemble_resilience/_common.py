"""What the resilience middleware share: which errors are the caller's own fault."""

from __future__ import annotations


def is_client_error(exc: BaseException) -> bool:
    """An error with an HTTP status below 500 (validation, auth, rate limit, not found...).

    Retrying it, counting it against a circuit or hiding it behind a fallback would be
    wrong: the same call fails the same way, and the caller must see why.
    """
    status = getattr(exc, "http_status", None)
    return isinstance(status, int) and status < 500
