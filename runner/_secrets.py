"""Secrets: which names stand for them, and how known secret values are found in text.

One rule for the runtime's error messages (a validation error does not echo the value
of a ``password`` field), the assembler's diagnostics and the ``logger``'s scrubbing
(the value under such a key is masked, whatever its type; a known secret value is
masked as a whole token, never inside a word).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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


#: The shortest secret looked for inside text. A shorter one (and a plain word such as
#: ``password`` or ``Administrator``) would match ordinary words and garble messages
#: ("too <redacted> for HS256"): it is masked only where it stands as a whole value.
MIN_IN_TEXT = 8
_WORD = re.compile(r"\w", re.ASCII)


def findable_in_text(value: str) -> bool:
    """Whether ``value`` is looked for inside text: long enough, and not a plain word
    (all lower case, all upper case or capitalised letters) that prose may contain."""
    if len(value) < MIN_IN_TEXT:
        return False
    return not (value.isalpha() and (value.islower() or value.isupper() or value.istitle()))


def _token(value: str) -> str:
    """A pattern matching ``value`` as a whole token: not inside a longer word."""
    before = r"(?<!\w)" if _WORD.match(value[0]) else ""
    after = r"(?!\w)" if _WORD.match(value[-1]) else ""
    return before + re.escape(value) + after


class SecretValues:
    """Known secret values (the manifest's, from the environment), to mask in text.

    A text equal to one is masked whole. Inside longer text a value is masked only as a
    whole token (``abc123`` is not found in ``xabc1234``) and only when
    :func:`findable_in_text`: never inside a word, so messages stay readable.
    """

    __slots__ = ("_pattern", "exact")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.exact = frozenset(v for v in values if v)
        found = sorted((v for v in self.exact if findable_in_text(v)), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(_token, found))) if found else None

    def __bool__(self) -> bool:
        return bool(self.exact)

    def sub(self, text: str, replacement: str) -> str:
        """``text`` with each known secret in it replaced by ``replacement``."""
        if text in self.exact:
            return replacement
        pattern = self._pattern
        return pattern.sub(replacement, text) if pattern is not None else text
