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
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from datetime import UTC, datetime
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


def is_secret_key(key: object) -> bool:
    """Whether a mapping key names a secret (password, token, api_key, cookie, ...)."""
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


class Scrubber:
    """Removes secrets from text: known secret values, JWTs, bearer tokens, ``key=value``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._values = re.compile("|".join(map(re.escape, values))) if values else None

    def text(self, text: str) -> str:
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


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller added with ``extra=`` (and the context filter's ones)."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


def _time(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Formatter(logging.Formatter):
    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def exception_text(self, record: logging.LogRecord) -> str:
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

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.scrubber.text(record.getMessage()),
        }
        for key, value in extras(record).items():
            if key not in out:
                out[key] = REDACTED if is_secret_key(key) else self.scrubber.value(value)
        exception = self.exception_text(record)
        if exception:
            out["exception"] = exception
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(_Formatter):
    """``TIME LEVEL logger: message key=value ...``, then the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{_time(record)} {record.levelname:<8} {record.name}: "
            f"{self.scrubber.text(record.getMessage())}"
        )
        for key, value in extras(record).items():
            shown = REDACTED if is_secret_key(key) else self.scrubber.value(value)
            if not isinstance(shown, str) or not shown or any(c.isspace() for c in shown):
                shown = json.dumps(shown, ensure_ascii=False, default=str)
            line += f" {key}={shown}"
        exception = self.exception_text(record)
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


class Handler(logging.Handler):
    """Writes each formatted record as one line to ``stream`` (default: ``sys.stderr``)."""

    def __init__(self, formatter: logging.Formatter, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.addFilter(ContextFilter())
        self._stream = stream

    @property
    def stream(self) -> IO[str]:
        """The explicit stream, else the current ``sys.stderr`` (so captures see it)."""
        return self._stream if self._stream is not None else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = self.stream
            stream.write(line + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


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
