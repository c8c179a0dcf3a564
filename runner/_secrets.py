"""Which names stand for secrets: a value under such a key is never shown whole.

One rule for the runtime's error messages (a validation error does not echo the value
of a ``password`` field) and the ``logger``'s scrubbing (the value under such a key is
masked, whatever its type).
"""

from __future__ import annotations

import re
from functools import lru_cache

SECRET_KEY = re.compile(
    r"passw(?:or)?d|passphrase|secret|token|authorization|api[_-]?key|cookie|credential"
    r"|private[_-]?key|(?:^|[_-])auth(?:$|[_-])",
    re.I,
)


@lru_cache(maxsize=4096)
def _is_secret_str(key: str) -> bool:
    return SECRET_KEY.search(key) is not None


def is_secret_key(key: object) -> bool:
    """Whether a mapping key names a secret (password, token, api_key, cookie, ...)."""
    if type(key) is str:  # the usual case: a few keys, over and over (cached)
        return _is_secret_str(key)
    return isinstance(key, str) and SECRET_KEY.search(key) is not None
