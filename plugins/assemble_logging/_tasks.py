"""``logging.tasks``: a start record, then a complete record (or an error record) per task run."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Literal

import anyio

import assembler
import runner

from ._logger import LEVELS, current_task, log_fields, redact_keys


@dataclass(frozen=True)
class LogTasksConfig:
    """``logging.tasks``' config."""

    level: Literal["debug", "info", "warning", "error", "critical"] = assembler.option(
        "info",
        doc="the level of the start and complete records (error records are at least warning)",
    )
    include_input: bool = assembler.option(
        False,
        doc="add the task's input to the start record, secret-looking keys replaced by ***",
    )


def _request_id() -> str | None:
    request = runner.current_request.try_use()
    request_id = getattr(request, "id", None)
    return request_id if isinstance(request_id, str) else None


def _ms(start: float) -> float:
    return round((perf_counter() - start) * 1000, 3)


def _log(
    logger: logging.Logger,
    level: int,
    where: tuple[str, int, str],
    msg: str,
    args: tuple[Any, ...],
    fields: dict[str, Any],
    exc: BaseException | None = None,
) -> None:
    """``logger.log(level, msg, *args, extra=fields, exc_info=exc)`` for an enabled ``level``.

    The cheapest way that writes the same: when only the plugin's own handler could see
    the record, it writes the line from ``fields`` (:func:`log_fields`, no record at
    all). Else a plain ``logging.Logger`` gets the record straight from ``makeRecord``
    and ``handle`` (what ``log`` does after ``findCaller``, whose frame walk costs more
    than the rest of the record): the record names this module and ``where`` (path,
    first line, function) as its caller, which is where ``findCaller`` would point, and
    goes to the same filters and handlers. Any other logger (a subclass, an adapter)
    gets ``log``.
    """
    if exc is None and log_fields(logger, level, msg, args, fields):
        return
    if type(logger) is logging.Logger:
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        path, line, func = where
        logger.handle(
            logger.makeRecord(logger.name, level, path, line, msg, args, exc_info, func, fields)
        )
    else:
        logger.log(level, msg, *args, exc_info=exc, extra=fields)


def _where(func: Callable[..., Any]) -> tuple[str, int, str]:
    code = func.__code__
    return code.co_filename, code.co_firstlineno, code.co_name


#: An unexpected error's traceback is written at most once per task and error class in
#: this many seconds: a failure repeated on every call (a bug, an outage nobody
#: classified) would otherwise write a traceback per call.
TRACEBACK_INTERVAL = 10.0


class Tracebacks:
    """When an unexpected error's traceback was last written, per task and error class
    (one per middleware use; at most 1,024 kinds remembered)."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], float] = {}

    def due(self, task: str, exc: Exception) -> bool:
        key, now = (task, type(exc).__qualname__), time.monotonic()
        if now - self.last.get(key, -TRACEBACK_INTERVAL) < TRACEBACK_INTERVAL:
            return False
        if len(self.last) >= 1024:
            self.last.clear()
        self.last[key] = now
        return True


def _failed(
    logger: logging.Logger,
    level: int,
    task: str,
    exc: Exception,
    start: float,
    tracebacks: Tracebacks,
) -> None:
    """The error record: class, code and HTTP status (RunnerError), duration.

    A typed error (a ``RunnerError``: a 404, a 503 ``db.unavailable``) is an answer the
    app chose: its line needs no traceback. An unexpected one gets its traceback, at
    most once per task and error class every :data:`TRACEBACK_INTERVAL` seconds."""
    status = getattr(exc, "http_status", None)
    client = isinstance(status, int) and status < 500
    level = max(level, logging.WARNING if client else logging.ERROR)
    if not logger.isEnabledFor(level):
        return
    fields: dict[str, Any] = {
        "event": "task.error",
        "task": task,
        "duration_ms": _ms(start),
        "error": type(exc).__name__,
    }
    if isinstance(exc, runner.errors.RunnerError):
        fields["code"] = exc.code
        if isinstance(status, int):
            fields["http_status"] = status
    message = getattr(exc, "message", None) or str(exc)  # RunnerError: without the hint
    if (request_id := _request_id()) is not None:
        fields["request_id"] = request_id
    _log(
        logger,
        level,
        _FAILED,
        "task %s failed after %.1f ms: %s: %s",
        (task, fields["duration_ms"], type(exc).__name__, message),
        fields,
        None
        if isinstance(exc, runner.errors.RunnerError) or not tracebacks.due(task, exc)
        else exc,
    )


def _cancelled(logger: logging.Logger, level: int, task: str, start: float) -> None:
    """The run was cancelled from outside (an enclosing timeout, shutdown)."""
    level = max(level, logging.WARNING)
    if not logger.isEnabledFor(level):
        return
    fields: dict[str, Any] = {"event": "task.cancelled", "task": task, "duration_ms": _ms(start)}
    if (request_id := _request_id()) is not None:
        fields["request_id"] = request_id
    msg = "task %s cancelled after %.1f ms"
    _log(logger, level, _CANCELLED, msg, (task, fields["duration_ms"]), fields)


_FAILED, _CANCELLED = _where(_failed), _where(_cancelled)


def make_log_tasks(config: LogTasksConfig | Mapping[str, Any]) -> Callable[..., Awaitable[Any]]:
    """The middleware for one use of ``logging.tasks``."""
    config = assembler.from_config(LogTasksConfig, config)
    level = LEVELS[config.level]
    include_input = config.include_input
    tracebacks = Tracebacks()

    async def log_tasks(call: runner.TaskCall, config: Any, logger: logging.Logger) -> Any:
        task = call.task.id
        token = current_task.set(task)  # user records inside the task carry its id
        try:
            enabled = logger.isEnabledFor(level)  # when not: only failures cost anything
            if enabled:
                fields: dict[str, Any] = {"event": "task.start", "task": task}
                if (request_id := _request_id()) is not None:
                    fields["request_id"] = request_id
                if include_input:
                    fields["input"] = redact_keys(call.input)
                _log(logger, level, where, "task %s started", (task,), fields)
                fields.pop("input", None)
            start = perf_counter()
            try:
                result = await call.next()
            except anyio.get_cancelled_exc_class():
                _cancelled(logger, level, task, start)
                raise
            except Exception as exc:
                _failed(logger, level, task, exc, start, tracebacks)
                raise
            if enabled:
                fields.update(event="task.complete", duration_ms=(ms := _ms(start)))
                _log(logger, level, where, "task %s completed in %.1f ms", (task, ms), fields)
            return result
        finally:
            current_task.reset(token)

    where = _where(log_tasks)
    return log_tasks


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="logging.tasks",
            kind="middleware",
            config=LogTasksConfig,
            factory=make_log_tasks,
            dependencies={"logger": "logger"},
            description="logs each task run: start, complete or error, with duration and ids",
        )
    ]
