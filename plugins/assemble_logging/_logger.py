"""The ``logger`` resource: a stdlib logger writing JSON (or text) lines to stderr.

Every app gets one with id ``logger`` (a manifest may configure it with
``logger: {use: logger, config: {...}}``). Each logger resource gets its own named
stdlib logger (``assemble.<app id>.<resource id>``) with one handler that writes to
``sys.stderr`` (looked up at each write, never stdout) and never propagates to the root
logger. The handler adds the current request id and task id to every record and
scrubs secrets from every formatted line: values of secret-looking keys, bearer
tokens and JWTs, and the manifest's values that came from ``${env...}``.
"""

from __future__ import annotations

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

_SECRET_KEY = re.compile(
    r"passw(?:or)?d|passphrase|secret|token|authorization|api[_-]?key|cookie|credential"
    r"|private[_-]?key|(?:^|[_-])auth(?:$|[_-])",
    re.I,
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")  # also after `_`
_BEARER = re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/-]+=*", re.I)
# `scheme://user:password@host`: the password in a URL's userinfo.
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.I)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
)
# `Authorization: Basic ...`, `Cookie: a=1; b=2`: the whole rest of the line is secret.
_HEADER_LINE = re.compile(
    r"\b((?:proxy-)?authorization|(?:set-)?cookie)(\s*[:=]\s*)(?![\"'\s])[^\r\n]+", re.I
)
# `password=x`, `"token": "x"`, `{'api_key': 'x'}`: the value after a secret-looking key.
_KEY_VALUE = re.compile(
    r"(?<![\w.-])([\w.-]*(?:passw(?:or)?d|passphrase|secret|token|authorization|api[_-]?key"
    r"|cookie|credential|private[_-]?key)[\w.-]*)"
    r"([\"']?\s*[:=]\s*)"
    r"(?:([\"'])(?:\\.|(?!\3).)*\3|[^\s\"',;&)}\]]+)",
    re.I,
)
_MAX_DEPTH = 32
# Every match of the patterns below contains one of these (a cheap test first).
_HINTS = ("pass", "secret", "token", "auth", "api", "cookie", "bearer", "basic", "credential")
_PRIVATE = "PRIVATE KEY-----"


@lru_cache(maxsize=4096)
def _is_secret_str(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def is_secret_key(key: object) -> bool:
    """Whether a mapping key names a secret (password, token, api_key, cookie, ...)."""
    if type(key) is str:  # the usual case: a few keys, over and over (cached)
        return _is_secret_str(key)
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def redact_keys(value: Any, _depth: int = 0) -> Any:
    """``value`` with the values of secret-looking keys replaced by ``"***"`` at any depth.

    Mappings become dicts and lists/tuples lists; anything else is returned as it is.
    """
    if _depth > _MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {
            k: REDACTED if is_secret_key(k) else redact_keys(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_keys(v, _depth + 1) for v in value]
    return value


# Short texts the scrubber found nothing in are remembered (at most this many, this long):
# the same task ids, event names and messages come back on every record.
_CLEAN_MAX = 4096
_CLEAN_LEN = 256


class Scrubber:
    """Removes secrets from text: known secret values, JWTs, bearer tokens, ``key=value``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._values = re.compile("|".join(map(re.escape, values))) if values else None
        # Texts that scrub to themselves. Only those: nothing secret-looking is kept.
        self._clean: set[str] = set()

    def text(self, text: str) -> str:
        if text in self._clean:
            return text
        scrubbed = self._scrub(text)
        if len(text) <= _CLEAN_LEN and scrubbed == text and type(text) is str:
            clean = self._clean
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean.add(text)
        return scrubbed

    def _scrub(self, text: str) -> str:
        if self._values is not None:
            text = self._values.sub(REDACTED, text)
        if "eyJ" in text:
            text = _JWT.sub(REDACTED, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(r"\1" + REDACTED + "@", text)
        if _PRIVATE in text:
            text = _PRIVATE_KEY.sub(REDACTED, text)
        lowered = text.lower()
        for hint in _HINTS:
            if hint in lowered:
                break
        else:
            return text  # the common case: nothing that looks like a credential
        text = _BEARER.sub(r"\1 " + REDACTED, text)
        text = _HEADER_LINE.sub(r"\1\2" + REDACTED, text)
        return _KEY_VALUE.sub(_redact_match, text)

    def value(self, value: Any, _depth: int = 0) -> Any:
        """A JSON-ready copy of ``value``: secret keys redacted, every string scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if _depth > _MAX_DEPTH:
            return "..."
        if isinstance(value, Mapping):
            return {
                self.text(str(k)): REDACTED if is_secret_key(k) else self.value(v, _depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v, _depth + 1) for v in value]
        return self.text(str(value))


def _redact_match(m: re.Match[str]) -> str:
    quote = m.group(3) or ""
    return f"{m.group(1)}{m.group(2)}{quote}{REDACTED}{quote}"


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
        return self.scrubber.text("\n".join(parts)) if parts else ""


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
            if type(key) is str and not _is_secret_str(key):
                # scrub(value) inline for a text known clean (ids, event names)
                out[key] = value if type(value) is str and value in clean else scrub(value)
            else:
                out[key] = REDACTED if is_secret_key(key) else scrub(value)
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
            shown = REDACTED if is_secret_key(key) else scrub(value)
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
