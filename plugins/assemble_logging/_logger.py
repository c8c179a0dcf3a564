"""The ``logger`` resource: a stdlib logger writing JSON (or text) lines to stderr.

Every app gets one with id ``logger`` (a manifest may configure it with
``logger: {use: logger, config: {...}}``). Each logger resource gets its own named
stdlib logger (``assemble.<app id>.<resource id>``) with one handler that writes to
``sys.stderr`` (looked up at each write, never stdout) and never propagates to the root
logger. The handler adds the current request id and task id to every record,
scrubs secrets from every formatted line (the manifest's values that came from
``${env...}``, values under secret-named keys, bearer tokens, JWTs, URL credentials,
private keys, password hashes) and bounds it: each text at :data:`MAX_TEXT`
characters, the traceback at :data:`MAX_EXCEPTION`, lists and dicts at
:data:`MAX_ITEMS` items.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from functools import lru_cache
from typing import IO, Any

import assembler
import runner

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
REDACTED = "***"
DEFAULT_CONFIG: dict[str, Any] = {"level": "info", "format": "json"}

LEVEL_SCHEMA: dict[str, Any] = {"enum": list(LEVELS), "default": "info"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "level": {
            **LEVEL_SCHEMA,
            "description": "the lowest level written: debug, info, warning, error or critical",
        },
        "format": {
            "enum": ["json", "text"],
            "default": "json",
            "description": "json: one JSON object per line; text: one human-readable line",
        },
    },
    "additionalProperties": False,
}

#: The id of the task running in this context; set by ``logging.tasks`` around each run.
current_task: ContextVar[str | None] = ContextVar("assemble_logging.task", default=None)

#: The longest text a line carries whole (the message, each string of the fields, each
#: key); a longer one is cut there and ends with ``… (N more characters)``.
MAX_TEXT = 2_000
#: The longest traceback (``exception``) a line carries.
MAX_EXCEPTION = 20_000
#: At most this many items of a list, keys of a dict or elements of a set in a field.
MAX_ITEMS = 100
#: About the most characters one field carries in all, its lists and dicts included.
MAX_FIELD = 4_000
_MAX_DEPTH = 32
# A bracketed value (`password=['x']`) not closed this far on is masked to the end.
_MAX_SCAN = 20_000

# Every pattern below runs in time linear in the text (possessive or bounded repeats,
# lookbehinds that try each word once): a stranger's text must not stall the logger.
# The patterns they replaced backtracked: 20,000 characters of `tokentoken...` took
# 2.2 s to scrub, 40,000 took 9.5 s; now 0.3 ms (2-core dev machine, 2026-12-02).

# JWTs: `eyJ<header>.<payload>.<signature>`, also after `_` (`token_eyJ...`).
_JWT = re.compile(r"(?<![A-Za-z0-9])eyJ[A-Za-z0-9_-]{0,1024}+\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+")
# `Bearer <token>`, `Basic <credentials>`; not a plain word (`basic auth`, `Bearer token`).
_BEARER = re.compile(
    r"\b(bearer|basic)(\s+)(?!(?-i:[a-z]{1,15}|[A-Z][a-z]{0,14})\b)[A-Za-z0-9._~+/-]+=*", re.I
)
_URL = re.compile(r"(?<![\w+.-])[a-z][a-z0-9+.-]{0,31}://[^\s\"'<>`]*", re.I)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
)
# argon2, bcrypt, scrypt and PBKDF2 hashes, as password stores write them.
_PASSWORD_HASH = re.compile(
    r"(?:\$(?:argon2(?:id|i|d)|2[aby]|scrypt|pbkdf2[\w-]*)|\bpbkdf2_\w+)\$[\w$=,./+-]*+"
)
# A key, then `:` or `=`: `password=`, `"token": `, `'api_key': `, `Cookie: `.
_KEY = re.compile(r"(?<![\w.-])([\w.-]++)([\"']?\s*[:=]\s*)")
# `password: is required`: the runtime's validation messages (`field: message`, see
# runner/_schema.py and runner/_boundary.py) name a secret field, never its value; what
# follows such a `key: ` is a message.
_MESSAGE = re.compile(
    r"(?:is|are|was|were|must|should|does|do|has|have|holds|contains|not|cannot|the|an?"
    r"|too|expected|missing|use|see)[ \t]|\(the key\) ",
    re.I,
)
# `Authorization: Digest a="1", b="2"`, `Cookie: a=1; b=2`: the rest of the line is secret.
_WHOLE_LINE = re.compile(r"(?:^|[_.-])(?:authorization|cookie)$", re.I)
_BARE = re.compile(r"[^\s\"',;&()\[\]{}]*+")
_QUOTED = {q: re.compile(rf"{q}(?:[^{q}\\\n]|\\.)*+{q}") for q in "'\""}
_NESTED = re.compile(r"\\.|[\"'()\[\]{}]", re.S)
_LINE_END = re.compile(r"[\r\n]")
_STRING_PREFIXES = frozenset({"b", "r", "u", "f", "br", "rb", "fr", "rf"})
# Every match of the key and bearer patterns contains one of these (a cheap test first).
_HINTS = (
    "pass",
    "secret",
    "token",
    "auth",
    "api",
    "cookie",
    "bearer",
    "basic",
    "credential",
    "private",
)
_PRIVATE = "PRIVATE KEY-----"


@lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    # the fields' names, over and over: one dict lookup for the usual few
    return runner.is_secret_key(key)


def redact_keys(value: Any, _depth: int = 0) -> Any:
    """``value`` with the values of secret-looking keys replaced by ``"***"`` at any depth,
    whatever their type, and at most :data:`MAX_ITEMS` items of each list or dict.

    Mappings become dicts and lists/tuples lists; anything else is returned as it is.
    """
    if _depth > _MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        items = itertools.islice(value.items(), MAX_ITEMS)
        out = {
            k: REDACTED if runner.is_secret_key(k) else redact_keys(v, _depth + 1) for k, v in items
        }
        if len(value) > MAX_ITEMS:
            out["…"] = f"({len(value) - MAX_ITEMS:,} more keys)"
        return out
    if isinstance(value, list | tuple):
        copy = [redact_keys(v, _depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            copy.append(f"… ({len(value) - MAX_ITEMS:,} more items)")
        return copy
    return value


# Short texts the scrubber found nothing in are remembered (at most this many, this long):
# the same task ids, event names and messages come back on every record.
_CLEAN_MAX = 4096
_CLEAN_LEN = 256


class Scrubber:
    """Removes secrets from text and cuts long texts (see docs/plugins/logger.md).

    Masked: known secret values (as whole tokens, :class:`runner.SecretValues`), JWTs,
    ``Bearer``/``Basic`` credentials, URL credentials (:func:`assembler.mask_url`), PEM
    private keys, password hashes, and the value after a secret-named key in text.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = runner.SecretValues(secrets)
        self._values = values if values else None
        # A known secret cut by a window's end is at most this long: see `_cut`.
        self._longest = max(map(len, values.exact), default=0)
        # Texts that scrub to themselves. Only those: nothing secret-looking is kept.
        self._clean: set[str] = set()

    def text(self, text: str, limit: int = MAX_TEXT) -> str:
        """``text`` scrubbed, and cut at ``limit`` characters."""
        if text in self._clean:
            return text
        if len(text) > limit:
            return self._cut(text, limit)
        scrubbed = self._scrub(text)
        if len(text) <= _CLEAN_LEN and scrubbed == text and type(text) is str:
            clean = self._clean
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean.add(text)
        return scrubbed

    def _cut(self, text: str, limit: int) -> str:
        """``text`` scrubbed and cut, scrubbing only a window of it (twice the limit), so
        the work stays bounded: 0.4 ms for a 1 MB text, where scrubbing it whole took
        200 ms (measured on the 2-core dev machine).

        A known secret that the window's end cuts is left unmasked in the window's last
        ``_longest`` characters: the window grows (or the whole text is read) until
        masking leaves those past the limit, unless the window ends masked.
        """
        window = 2 * limit
        while True:
            scrubbed = self._scrub(text[:window])
            if window >= len(text):
                if len(scrubbed) <= limit:
                    return scrubbed
                break
            if len(scrubbed) >= limit + self._longest or scrubbed.endswith(REDACTED):
                break
            window *= 4
        return f"{scrubbed[:limit]}… ({len(text) - limit:,} more characters)"

    def _scrub(self, text: str) -> str:
        if self._values is not None:
            text = self._values.sub(text, REDACTED)
        if "eyJ" in text:
            text = _JWT.sub(REDACTED, text)
        if "://" in text:
            text = _URL.sub(_mask_url, text)
        if _PRIVATE in text:
            text = _PRIVATE_KEY.sub(REDACTED, text)
        if "$" in text:
            text = _PASSWORD_HASH.sub(REDACTED, text)
        lowered = text.lower()
        for hint in _HINTS:
            if hint in lowered:
                break
        else:
            return text  # the common case: nothing that looks like a credential
        return _key_values(_BEARER.sub(r"\1\2" + REDACTED, text))

    def value(self, value: Any) -> Any:
        """A JSON-ready copy of ``value``: every string scrubbed and cut at :data:`MAX_TEXT`,
        the value of each secret-named key ``***`` whatever its type, at most
        :data:`MAX_ITEMS` items of each list or dict, about :data:`MAX_FIELD` characters."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        return self._copy(value, [MAX_FIELD], 0)

    def _copy(self, value: Any, budget: list[int], depth: int) -> Any:
        # `budget`: the characters the field may still carry (a scalar counts as 8)
        if isinstance(value, str):
            shown = self.text(value)
            budget[0] -= len(shown)
            return shown
        if value is None or isinstance(value, bool | int | float):
            budget[0] -= 8
            return value
        if depth > _MAX_DEPTH:
            return "..."
        if isinstance(value, Mapping):
            return self._mapping(value, budget, depth)
        if isinstance(value, list | tuple | set | frozenset):
            out = []
            for i, item in enumerate(value):
                if i >= MAX_ITEMS or budget[0] <= 0:
                    out.append(f"… ({len(value) - i:,} more items)")
                    break
                out.append(self._copy(item, budget, depth + 1))
            return out
        return self._copy(str(value), budget, depth)

    def _mapping(self, value: Mapping[Any, Any], budget: list[int], depth: int) -> Any:
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= MAX_ITEMS or budget[0] <= 0:
                out["…"] = f"({len(value) - i:,} more keys)"
                break
            shown = self.text(str(key))
            budget[0] -= len(shown)
            secret = runner.is_secret_key(key)
            out[shown] = REDACTED if secret else self._copy(item, budget, depth + 1)
        return out


def _mask_url(m: re.Match[str]) -> str:
    """A URL found in text, masked; the punctuation after it (`(see http://h/x).`) kept."""
    url = m.group()
    closers = "".join(c for o, c in ("()", "[]", "{}") if o not in url)
    trimmed = url.rstrip(".,;:!?" + closers)
    return assembler.mask_url(trimmed) + url[len(trimmed) :] if trimmed else url


def _key_values(text: str) -> str:
    """``text`` with the value after each secret-named key replaced by ``***``; one pass,
    each masked value skipped whole."""
    parts: list[str] = []
    done = pos = 0
    while (m := _KEY.search(text, pos)) is not None:
        pos = m.end()
        key, sep = m.groups()
        if not _secret_name(key) or _not_a_value(sep, text, pos):
            continue
        end, shown = _value(text, pos, _WHOLE_LINE.search(key) is not None)
        if end > pos:
            parts += (text[done:pos], shown)
            done = pos = end
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _not_a_value(sep: str, text: str, pos: int) -> bool:
    """Whether what follows ``key: `` is a message (``password: is required``) or a
    manifest's reference (``secret: ${env.JWT_SECRET}``), not a value."""
    if text.startswith("${", pos):
        return True
    unquoted = sep[0] not in ("'", '"')
    return unquoted and ":" in sep and sep[-1] == " " and _MESSAGE.match(text, pos) is not None


def _value(text: str, start: int, whole_line: bool) -> tuple[int, str]:
    """Where the value at ``start`` ends, and what it is shown as: a quoted string keeps
    its quotes, anything in brackets (``['x']``, ``{"a": 1}``, ``Secret('x')``) goes
    whole, an unclosed quote or bracket to the end of the line or of the text."""
    bare = _BARE.match(text, start)
    end = bare.end() if bare else start
    after = text[end : end + 1]
    if after in ("'", '"') and (end == start or text[start:end].lower() in _STRING_PREFIXES):
        quoted = _QUOTED[after].match(text, end)
        if quoted is None:
            return _line_end(text, end), f"{text[start:end]}{after}{REDACTED}"
        return quoted.end(), f"{text[start:end]}{after}{REDACTED}{after}"
    if after and after in "([{":
        return _nested_end(text, end), REDACTED
    if whole_line:
        return _line_end(text, start), REDACTED
    return end, REDACTED


def _line_end(text: str, start: int) -> int:
    found = _LINE_END.search(text, start)
    return found.start() if found else len(text)


def _nested_end(text: str, start: int) -> int:
    """The end of the bracketed value at ``start`` (quotes and escapes respected)."""
    depth, quote = 0, ""
    for m in _NESTED.finditer(text, start, start + _MAX_SCAN):
        token = m.group()
        if quote:
            if token == quote:
                quote = ""
        elif token in ("'", '"'):
            quote = token
        elif token in ("(", "[", "{"):
            depth += 1
        elif token in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return m.end()
    return len(text)


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


# The top-level keys of a JSON line that the extras cannot take.
_NOT_EXTRA_JSON = _STANDARD | {"time", "level", "logger"}


def _make_encode() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, default=str)``, without building an encoder
    (the C one, where there is one) at each call.

    Without the check for circular references: what it encodes are the scrubber's
    copies (fresh dicts and lists, at most ``_MAX_DEPTH`` deep), which have no cycles.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    if make is None:
        return dumps
    try:
        chunks = make(
            None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
        )
        sample = {"a": ["é", 1, 2.5, None, True, {"b": object}], "c": '\n"\u2028'}
        if "".join(chunks(sample, 0)) != dumps(sample):
            return dumps
    except Exception:  # another Python's private signature
        return dumps

    def encode(value: Any) -> str:
        if type(value) is str:
            return dumps(value)
        return "".join(chunks(value, 0))

    return encode


_encode = _make_encode()
_SPACE = re.compile(r"\s")  # the characters `str.isspace` is true for


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller added with ``extra=`` (and the context filter's ones)."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


_MILLIS = [f".{ms:03d}Z" for ms in range(1000)]


class Clock:
    """``created`` (a POSIX timestamp) as ISO 8601 in UTC, milliseconds, ``Z``.

    The same text as ``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``
    with ``Z`` for ``+00:00``; the part down to the second is formatted once a second.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[float, str] = (math.nan, "")  # (second, its text); one tuple: threads

    def __call__(self, created: float) -> str:
        # As datetime.fromtimestamp: microseconds rounded half to even, then truncated.
        fraction, second = math.modf(created)
        us = round(fraction * 1e6)
        if us >= 1_000_000:
            second, us = second + 1, us - 1_000_000
        elif us < 0:
            second, us = second - 1, us + 1_000_000
        last = self._last
        if last[0] == second:
            return last[1] + _MILLIS[us // 1000]
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._last = (second, prefix)
        return prefix + _MILLIS[us // 1000]


class _Formatter(logging.Formatter):
    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber
        self.clock = Clock()

    def exception_text(self, record: logging.LogRecord) -> str:
        if not (record.exc_info or record.exc_text or record.stack_info):
            return ""
        parts = []
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return self.scrubber.text("\n".join(parts), MAX_EXCEPTION) if parts else ""


class JsonFormatter(_Formatter):
    """One JSON object a line: time, level, logger, message, the extras, exception."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__(scrubber)
        # (levelname, logger name) -> `"level": "info", "logger": "...", ` (JSON-escaped)
        self._heads: dict[tuple[str, str], str] = {}

    def _head(self, levelname: str, name: str) -> str:
        head = self._heads.get((levelname, name))
        if head is None:
            if len(self._heads) >= 1024:
                self._heads.clear()
            head = f'"level": {_encode(levelname.lower())}, "logger": {_encode(name)}, '
            self._heads[levelname, name] = head
        return head

    def format(self, record: logging.LogRecord) -> str:
        return self.line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            record.__dict__,
            self.exception_text(record),
        )

    def line(
        self,
        created: float,
        levelname: str,
        name: str,
        message: str,
        fields: Mapping[str, Any],
        exception: str = "",
    ) -> str:
        """The line of a record with these attributes (``fields``: its ``__dict__``)."""
        # The line json.dumps({"time": ..., "level": ..., "logger": ..., "message": ...,
        # **extras, "exception": ...}) would write: the fixed keys' part is pre-escaped.
        scrubber = self.scrubber
        clean, scrub = scrubber._clean, scrubber.value
        out: dict[str, Any] = {"message": scrubber.text(message)}
        for key, value in fields.items():
            if key in _NOT_EXTRA_JSON:
                continue
            if type(key) is str and not _secret_name(key):
                # scrub(value) inline for a text known clean (ids, event names)
                out[key] = value if type(value) is str and value in clean else scrub(value)
            else:
                out[key] = REDACTED if runner.is_secret_key(key) else scrub(value)
        if exception:
            out["exception"] = exception
        head = self._head(levelname, name)
        return f'{{"time": "{self.clock(created)}", {head}{_encode(out)[1:]}'


class TextFormatter(_Formatter):
    """``TIME LEVEL logger: message key=value ...``, then the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        return self.line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            record.__dict__,
            self.exception_text(record),
        )

    def line(
        self,
        created: float,
        levelname: str,
        name: str,
        message: str,
        fields: Mapping[str, Any],
        exception: str = "",
    ) -> str:
        """The line of a record with these attributes (``fields``: its ``__dict__``)."""
        scrub = self.scrubber.value
        parts = [f"{self.clock(created)} {levelname:<8} {name}: {self.scrubber.text(message)}"]
        for key, value in fields.items():
            if key in _STANDARD:
                continue
            shown = REDACTED if runner.is_secret_key(key) else scrub(value)
            if not isinstance(shown, str) or not shown or _SPACE.search(shown):
                shown = _encode(shown)
            parts.append(f" {key}={shown}")
        line = "".join(parts)
        return f"{line}\n{exception}" if exception else line


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (from ``runner.current_request``) and ``task`` when known."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request = runner.current_request.try_use()
            request_id = getattr(request, "id", None)
            if request_id is not None:
                record.request_id = request_id
        if getattr(record, "task", None) is None:
            task = current_task.get()
            if task is not None:
                record.task = task
        return True

    @staticmethod
    def add(fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` with what :meth:`filter` adds to a record that carries them."""
        if fields.get("request_id") is None:
            request_id = getattr(runner.current_request.try_use(), "id", None)
            if request_id is not None:
                fields = {**fields, "request_id": request_id}
        if fields.get("task") is None:
            task = current_task.get()
            if task is not None:
                fields = {**fields, "task": task}
        return fields


class Handler(logging.Handler):
    """Writes each formatted record as one line to ``stream`` (default: ``sys.stderr``)."""

    def __init__(self, formatter: logging.Formatter, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._context = ContextFilter()
        self.addFilter(self._context)
        self._stream = stream

    @property
    def stream(self) -> IO[str]:
        """The explicit stream, else the current ``sys.stderr`` (so captures see it)."""
        return self._stream if self._stream is not None else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _write(self, line: str) -> None:
        # One write and a flush per record: a crash loses no line written before it.
        stream = self.stream
        stream.write(line + "\n")
        stream.flush()

    def emit_fields(
        self,
        logger: logging.Logger,
        level: int,
        msg: str,
        args: tuple[Any, ...],
        fields: dict[str, Any],
    ) -> bool:
        """Write what ``logger.log(level, msg, *args, extra=fields)`` would, without a
        ``LogRecord``; ``False`` (and nothing written) where a record could be seen or
        changed on its way: see :func:`log_fields`."""
        formatter = self.formatter
        if (
            level < self.level
            or len(self.filters) != 1
            or self.filters[0] is not self._context
            or (type(formatter) is not JsonFormatter and type(formatter) is not TextFormatter)
            or logging.getLogRecordFactory() is not logging.LogRecord
            or not _STANDARD.isdisjoint(fields)  # makeRecord refuses those: its error
            or (len(args) == 1 and isinstance(args[0], Mapping))  # LogRecord's `%(key)s` args
        ):
            return False
        created = time.time()
        fields = self._context.add(fields)
        with self.lock:  # type: ignore[union-attr]  # made in Handler.__init__
            try:
                message = msg % args if args else msg
                self._write(
                    formatter.line(
                        created, logging.getLevelName(level), logger.name, message, fields
                    )
                )
            except RecursionError:
                raise
            except Exception:  # as emit: the standard library reports it, on stderr
                record = logger.makeRecord(logger.name, level, "", 0, msg, args, None, None, fields)
                record.created = created
                self.handleError(record)
        return True


def log_fields(
    logger: logging.Logger, level: int, msg: str, args: tuple[Any, ...], fields: dict[str, Any]
) -> bool:
    """``logger.log(level, msg, *args, extra=fields)`` for an enabled ``level``, the short way.

    When the record could only reach this plugin's handler, unchanged (a plain
    ``logging.Logger``, not disabled, no filters, not propagating, with one
    :class:`Handler` as it was made, the standard record factory), the handler writes
    the line straight from ``fields``: the same line (and the same request id and task
    id) as from the record, at a fraction of the cost. Otherwise nothing is written and
    the result is ``False``: the caller builds the record.
    """
    if (
        type(logger) is not logging.Logger
        or logger.disabled
        or logger.filters
        or logger.propagate
        or len(handlers := logger.handlers) != 1
        or type(handler := handlers[0]) is not Handler
    ):
        return False
    return handler.emit_fields(logger, level, msg, args, fields)


def open_logger(
    name: str, config: Any, secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> logging.Logger:
    """The named logger with a fresh scrubbing handler, at ``config``'s level and format.

    If a live logger resource (another runtime of the same app) already writes through
    ``name``, a suffix (``#2``, ...) keeps the two apart.
    """
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    scrubber = Scrubber(secrets)
    formatter: logging.Formatter = (
        TextFormatter(scrubber) if cfg["format"] == "text" else JsonFormatter(scrubber)
    )
    logger = logging.getLogger(name)
    n = 1
    while any(isinstance(h, Handler) for h in logger.handlers):
        n += 1
        logger = logging.getLogger(f"{name}#{n}")
    logger.setLevel(LEVELS[cfg["level"]])
    logger.propagate = False
    logger.addHandler(Handler(formatter, stream))
    return logger


#: Where the built-in plugins log their own records (``assemble.resilience.retry``,
#: ``assemble.cache.redis``, ...): while an app's ``logger`` is alive, they go through
#: its handler too, so they share its format and scrubbing.
PLUGINS_LOGGER = "assemble"
_ADOPTED = "_assemble_adopted"  # attribute on the app logger: what close_logger undoes


def adopt_plugin_records(logger: logging.Logger) -> None:
    """Route the ``assemble.*`` records of plugins through ``logger``'s handler."""
    parent = logging.getLogger(PLUGINS_LOGGER)
    if any(isinstance(h, Handler) for h in parent.handlers):
        return  # another live app already does (two runtimes in one process)
    handler = next(h for h in logger.handlers if isinstance(h, Handler))
    setattr(logger, _ADOPTED, (parent, handler, parent.propagate, parent.level))
    parent.addHandler(handler)
    # Not on to the root's handlers too: they would write the records unscrubbed.
    parent.propagate = False
    if parent.level == logging.NOTSET or parent.level > logger.level:
        parent.setLevel(logger.level)


def close_logger(logger: logging.Logger) -> None:
    """Remove and close the handlers :func:`open_logger` added."""
    adopted = getattr(logger, _ADOPTED, None)
    if adopted is not None:
        parent, handler, propagate, level = adopted
        parent.removeHandler(handler)
        parent.propagate = propagate
        parent.setLevel(level)
        delattr(logger, _ADOPTED)
    for handler in list(logger.handlers):
        if isinstance(handler, Handler):
            logger.removeHandler(handler)
            handler.close()


def _init_for(
    name: str, secrets: frozenset[str], *, main: bool = False
) -> Callable[[Any], logging.Logger]:
    def init_logger(config: Any) -> logging.Logger:
        logger = open_logger(name, config, secrets)
        if main:
            adopt_plugin_records(logger)
        return logger

    return init_logger


DESCRIPTION = "a stdlib logging.Logger writing JSON or text lines to stderr, secrets scrubbed"

#: Registered in every app; compile replaces it with one bound to the app's id and secrets.
default_logger = runner.Resource(
    "logger",
    init=_init_for("assemble.logger", frozenset(), main=True),
    dispose=close_logger,
    config=dict(DEFAULT_CONFIG),
    config_schema=SCHEMA,
    meta={"use": "logger", "description": DESCRIPTION},
)


def components() -> list[Any]:
    return [
        assembler.Component(
            name="logger",
            kind="resource",
            config_schema=SCHEMA,
            init=_init_for("assemble.logger", frozenset()),
            dispose=close_logger,
            description=DESCRIPTION,
        ),
        default_logger,
    ]


def with_secrets(manifest: assembler.Manifest, definitions: list[Any]) -> list[Any]:
    """Each ``logger`` resource, named after the app and its id, scrubbing the env secrets."""
    secrets = frozenset(manifest.secret_values)
    return [
        replace(
            d,
            init=_init_for(f"assemble.{manifest.id}.{d.id}", secrets, main=d.id == "logger"),
        )
        for d in definitions
        if isinstance(d, runner.Resource) and d.meta.get("use") == "logger"
    ]
