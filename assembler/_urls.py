"""URLs shown without their secrets: one rule for every place a URL is shown.

:func:`mask_url` is what resources put in their start and error messages, and what the
``logger`` applies to every URL inside a log line. It only replaces spans with ``***``:
everything else is shown exactly as written (no normalising), so a masked URL can be
found in the config it came from.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

import runner

#: What a URL that cannot be read is shown as: never the text itself, which may be a
#: password with the URL's punctuation in it, or a keyword DSN (``host=db password=x``).
UNPARSABLE = "<unparsable url>"
MASK = "***"

_SCHEME = re.compile(r"\s*[a-z][a-z0-9+.-]{0,31}://", re.I)
# Schemes whose drivers read a lone user as a user name (`postgresql://app@db`), never as
# a token: there it is shown. Anywhere else a user with no password is masked.
_NAMED_USER = re.compile(
    r"\s*(?:postgres(?:ql)?|mysql|mariadb|mssql|oracle|mongodb(?:\+srv)?|amqps?)"
    r"(?:\+[\w.-]+)?://",
    re.I,
)
# A comma starts another server only before a scheme (`nats://a:1,nats://b:2`): the
# hosts of one URL (`mongodb://u:p@h1,h2/db`) and a password may hold commas too.
_NEXT_SERVER = re.compile(r",(?=\s*[a-z][a-z0-9+.-]{0,31}://)", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_AUTHORITY_END = re.compile(r"[/?#]")
_HOST = r"(?:\[[\w:.%-]*\]|[^\s:@\[\],]*)(?::\d*)?"
_HOSTS = re.compile(rf"{_HOST}(?:,\s*{_HOST})*")
# One try per parameter (after `?`, `&`, `;` or `#`): linear in a stranger's long query.
_PARAM = re.compile(r"(?:^|(?<=[?&;#]))([^&;=#]*)=([^&;#]*)")
# Credentials that are not secret-named by runner.is_secret_key: `key=`, `ssl_key=`,
# and signatures (`sig=` of an Azure SAS, `X-Amz-Signature=` of a presigned S3 URL).
_KEY_PARAM = re.compile(r"(?:^|[_-])(?:key|sig|signature)$", re.I)


def mask_url(url: str) -> str:
    """``url`` with its secrets shown as ``***``, for messages and logs.

    Masked: the password of the userinfo (``user:***@host``); a user with no password
    (or an empty one), which is how tokens and API keys are written (``nats://***@host``,
    a git token, a Sentry DSN), except for the database schemes whose drivers read it as
    a user name (PostgreSQL, MySQL, MariaDB, SQL Server, Oracle, MongoDB, AMQP:
    ``postgresql://app@db`` is shown); the value of each credential in the query or the
    fragment (any secret-named parameter, as :func:`runner.is_secret_key` names them,
    and ``key``, ``sig``, ``signature``). A comma-separated server list is masked server
    by server. Text that cannot be read as a URL is shown as ``<unparsable url>``, never
    raw.
    """
    shown = []
    for server in _NEXT_SERVER.split(url):
        masked = _mask_server(server)
        if masked is None:
            return UNPARSABLE
        shown.append(masked)
    return ",".join(shown)


def _mask_server(server: str) -> str | None:
    scheme = _SCHEME.match(server)
    if scheme is None or _CONTROL.search(server):
        return None
    stripped = server.rstrip()
    head, rest, trail = scheme.group(), stripped[scheme.end() :], server[len(stripped) :]
    split = _split(rest)
    if split is None:
        return None
    userinfo, hosts, tail = split
    names = _NAMED_USER.match(head) is not None
    shown = "" if userinfo is None else _mask_userinfo(userinfo, names) + "@"
    return f"{head}{shown}{hosts}{_mask_tail(tail)}{trail}"


def _split(rest: str) -> tuple[str | None, str, str] | None:
    """``(userinfo or None, hosts, path?query#fragment)`` of what follows ``scheme://``.

    The authority ends at the first ``/``, ``?`` or ``#`` and its userinfo at its last
    ``@`` (a password may hold ``@``). Where a password or token holds ``/``, ``?`` or
    ``#`` unescaped, the authority is no host list (``u:p``), or a ``?``/``#`` part has
    an ``@`` before any ``=`` (``to?ken@h``): the userinfo runs to the URL's last ``@``.
    With no ``@`` at all, an authority that is no host list cannot be read.
    """
    end = _AUTHORITY_END.search(rest)
    cut = end.start() if end else len(rest)
    authority, at = rest[:cut], rest.rfind("@")
    if "@" not in authority:
        hosts = _HOSTS.fullmatch(authority) is not None
        if hosts and not (at > cut and rest[cut] in "?#" and "=" not in rest[cut:at]):
            return None, authority, rest[cut:]
        if at < 0:
            return None
        end = _AUTHORITY_END.search(rest, at)
        cut = end.start() if end else len(rest)
    else:
        at = authority.rfind("@")
    return rest[:at], rest[at + 1 : cut], rest[cut:]


def _mask_userinfo(userinfo: str, names: bool) -> str:
    user, colon, password = userinfo.partition(":")
    if colon and password:
        return f"{user}:{MASK}"
    return user if names and not colon else MASK


def _mask_tail(tail: str) -> str:
    if "=" not in tail:
        return tail
    path, question, query = tail.partition("?")
    if not question:  # a fragment only: `/cb#access_token=...`
        return _PARAM.sub(_mask_param, tail) if "#" in tail else tail
    return path + question + _PARAM.sub(_mask_param, query)


def _mask_param(m: re.Match[str]) -> str:
    key, value = m.group(1), m.group(2)
    name = unquote_plus(key)
    if value and (runner.is_secret_key(name) or _KEY_PARAM.search(name)):
        return f"{key}={MASK}"
    return m.group()
