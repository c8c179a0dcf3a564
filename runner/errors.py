"""Errors raised by the runtime.

Every error has a stable ``code`` (part of the public contract: tests, logs and
HTTP bodies use it), a ``hint`` that says how to fix the problem and, where it
applies, the ``http_status`` an HTTP edge should answer with.

The hierarchy::

    RunnerError                      base of everything below
    ├── DefinitionError              the app is wrong; raised before anything is initialised
    │   ├── DuplicateIdError           runner.duplicate_id
    │   ├── MissingDependencyError     runner.missing_dependency
    │   ├── CycleError                 runner.cycle
    │   ├── OverrideError              runner.override_target
    │   └── InvalidDefinitionError     runner.invalid_definition
    ├── ValidationError (ValueError)  runner.validation          422
    ├── ContextNotProvidedError (LookupError)  runner.context_missing  500
    ├── NotRegisteredError (KeyError) runner.not_registered
    ├── TaskNotRoutedError           runner.task_not_routed      503
    ├── ResourceInitError            runner.resource_init
    ├── ResourceNotReadyError        runner.resource_not_ready
    ├── HookError                    runner.hook_failed          (the hook's cause's status)
    ├── ShuttingDown                 runner.shutting_down        503
    ├── DrainTimeoutError            runner.drain_timeout
    ├── Unauthorized                 runner.unauthorized         401
    ├── Forbidden                    runner.forbidden            403
    ├── RateLimited                  runner.rate_limited         429 (``retry_after`` seconds)
    ├── CircuitOpen                  runner.circuit_open         503 (``retry_after`` seconds)
    ├── TaskTimeoutError (TimeoutError)  runner.timeout          504
    ├── ResourceFailure              a resource's backend failed; code ``<resource id>.<kind>``
    │   ├── ResourceUnavailable (ConnectionError)  <id>.unavailable  503 (``retry_after``)
    │   ├── ResourceTimeout (TimeoutError)         <id>.timeout      504
    │   └── InvalidData (ValueError)               <id>.invalid_data 422
    ├── InvalidAppError (ExceptionGroup)  runner.invalid_app  several problems before start
    ├── StartupError (ExceptionGroup)     runner.startup      several resources failed in one wave
    └── DisposeError (ExceptionGroup)     runner.dispose      one or more disposers failed
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "CircuitOpen",
    "ContextNotProvidedError",
    "CycleError",
    "DefinitionError",
    "DisposeError",
    "DrainTimeoutError",
    "DuplicateIdError",
    "FieldError",
    "Forbidden",
    "HookError",
    "InvalidAppError",
    "InvalidData",
    "InvalidDefinitionError",
    "MissingDependencyError",
    "NotRegisteredError",
    "OverrideError",
    "RateLimited",
    "ResourceFailure",
    "ResourceInitError",
    "ResourceNotReadyError",
    "ResourceTimeout",
    "ResourceUnavailable",
    "RunnerError",
    "ShuttingDown",
    "StartupError",
    "TaskNotRoutedError",
    "TaskTimeoutError",
    "Unauthorized",
    "ValidationError",
]


class RunnerError(Exception):
    """Base class: a stable ``code``, a ``hint`` and an optional ``http_status``."""

    code: ClassVar[str] = "runner.error"
    http_status: int | None = None

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class DefinitionError(RunnerError):
    """The app's definitions are inconsistent; nothing has been initialised."""

    code = "runner.definition"


class DuplicateIdError(DefinitionError):
    """Two definitions share one id."""

    code = "runner.duplicate_id"

    def __init__(self, id: str, kinds: tuple[str, str]) -> None:
        self.id = id
        super().__init__(
            f"id {id!r} is registered twice (as a {kinds[0]} and as a {kinds[1]})",
            hint="ids are global: rename one of them, or pass the second as an override",
        )


class MissingDependencyError(DefinitionError):
    """A definition depends on an id that is not registered."""

    code = "runner.missing_dependency"

    def __init__(self, owner: str, key: str, target: str, suggestion: str | None = None) -> None:
        self.owner, self.key, self.target = owner, key, target
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        hint += "register it, or mark the dependency optional"
        super().__init__(
            f"{owner!r} depends on {target!r} (as {key!r}), which is not registered", hint=hint
        )


class CycleError(DefinitionError):
    """Definitions depend on each other in a circle; ``path`` starts and ends with one id."""

    code = "runner.cycle"

    def __init__(self, path: Sequence[str], *, via: str = "") -> None:
        self.path = tuple(path)
        super().__init__(
            "dependency cycle: " + " -> ".join(self.path) + (f" (through {via})" if via else ""),
            hint="break the cycle: move the shared part into its own resource, "
            "or emit an event instead of depending back",
        )


class OverrideError(DefinitionError):
    """An override names an id that is not registered, or replaces it with another kind."""

    code = "runner.override_target"


class InvalidDefinitionError(DefinitionError):
    """A definition is malformed (a non-callable ``run``, a bad middleware entry, a bad schema).

    ``owner`` is the id of the definition at fault, when the check knows it.
    """

    code = "runner.invalid_definition"

    def __init__(self, message: str, *, hint: str = "", owner: str = "") -> None:
        super().__init__(message, hint=hint)
        self.owner = owner


@dataclass(frozen=True, slots=True)
class FieldError:
    """One schema violation: where (``path``, ``pointer``) and what (``message``)."""

    path: tuple[str | int, ...]
    message: str

    @property
    def pointer(self) -> str:
        """The JSON pointer of the failing value ("" is the whole document)."""
        return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in self.path)

    @property
    def field(self) -> str:
        """The failing field as a dotted path (``items[0].name``), or ``(root)``."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out or "(root)"


class ValidationError(RunnerError, ValueError):
    """A value (input, result, config, payload) failed its JSON Schema."""

    code = "runner.validation"
    http_status = 422

    def __init__(self, what: str, owner: str, errors: Sequence[FieldError]) -> None:
        self.what, self.owner, self.errors = what, owner, tuple(errors)
        details = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        super().__init__(
            f"invalid {what} for {owner!r}: {details}",
            hint=f"make the {what} match the {what} schema of {owner!r}",
        )

    @property
    def field(self) -> str:
        """The first failing field (dotted path)."""
        return self.errors[0].field if self.errors else "(root)"


class ContextNotProvidedError(RunnerError, LookupError):
    """``ctx.use()`` was called outside ``ctx.provide(...)``."""

    code = "runner.context_missing"
    http_status = 500

    def __init__(self, id: str) -> None:
        self.id = id
        super().__init__(
            f"async context {id!r} has no value here",
            hint=f"call this inside `with {id}.provide(value):` (or `async with`), "
            "or use `.try_use(default)` where the context is optional",
        )


class NotRegisteredError(RunnerError, KeyError):
    """The runtime was asked for an id it does not have (or of another kind)."""

    code = "runner.not_registered"

    def __init__(self, kind: str, id: str, suggestion: str | None = None) -> None:
        self.kind, self.id = kind, id
        super().__init__(
            f"no {kind} with id {id!r} is registered",
            hint=f"did you mean {suggestion!r}?" if suggestion else f"register the {kind} first",
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return RunnerError.__str__(self)


class TaskNotRoutedError(RunnerError):
    """A ``remote`` placeholder task was called but no tunnel routes it."""

    code = "runner.task_not_routed"
    http_status = 503

    def __init__(self, id: str) -> None:
        self.id = id
        super().__init__(
            f"task {id!r} is remote-only and no tunnel routes it",
            hint="add the task id to a tunnel client's `tasks` (and call it once that client "
            "has started: depend on the task), or give the task a `run` callable",
        )


class ResourceInitError(RunnerError):
    """A resource's init failed; ``__cause__`` holds the original exception."""

    code = "runner.resource_init"

    def __init__(self, id: str, cause: BaseException) -> None:
        self.id = id
        super().__init__(
            f"resource {id!r} failed to initialise: {type(cause).__name__}: {cause}",
            hint="the resources initialised before it were disposed; fix the cause above",
        )


class ResourceNotReadyError(RunnerError):
    """A callable needed a resource before it was initialised (an emit during init)."""

    code = "runner.resource_not_ready"

    def __init__(self, owner: str, resource: str) -> None:
        self.owner, self.resource = owner, resource
        if owner == "runtime":  # rt.resource() outside the app's lifetime
            super().__init__(
                f"resource {resource!r} is not initialised",
                hint="read resources inside `async with runner.run(app) as rt:`",
            )
            return
        super().__init__(
            f"{owner!r} needs resource {resource!r}, which is not initialised yet",
            hint="this happens when a resource's init emits an event whose hooks need a "
            "later resource: depend on that resource from the emitting resource",
        )


class HookError(RunnerError):
    """A hook failed while an event was emitted; ``__cause__`` holds the original exception."""

    code = "runner.hook_failed"

    def __init__(self, hook: str, event: str, cause: BaseException) -> None:
        self.hook, self.event = hook, event
        status = getattr(cause, "http_status", None)
        self.http_status = status if isinstance(status, int) else None
        super().__init__(
            f"hook {hook!r} failed on event {event!r}: {type(cause).__name__}: {cause}",
            hint="hooks after it did not run; the emitter sees this error",
        )


class ShuttingDown(RunnerError):
    """The runtime is shutting down and refuses new work (accepted work still completes)."""

    code = "runner.shutting_down"
    http_status = 503

    def __init__(self, what: str) -> None:
        super().__init__(
            f"refused {what}: the runtime is shutting down",
            hint="retry against another instance; work accepted before shutdown still completes",
        )


class DrainTimeoutError(RunnerError):
    """Work accepted before shutdown was still running when the drain budget ran out."""

    code = "runner.drain_timeout"

    def __init__(self, pending: int, abandoned: bool = False) -> None:
        self.pending = pending
        why = "the wait was abandoned (a second signal)" if abandoned else "raise drain_timeout"
        super().__init__(
            f"{pending} task run(s) or emit(s) still in flight when draining stopped",
            hint=f"{why}; that work was not cancelled and may outlive the resources it uses",
        )


class Unauthorized(RunnerError):
    """No valid credentials. One message for every cause, so a caller learns nothing more."""

    code = "runner.unauthorized"
    http_status = 401

    def __init__(
        self,
        message: str = "authentication required",
        *,
        hint: str = "send a valid token: `Authorization: Bearer <token>`",
    ) -> None:
        super().__init__(message, hint=hint)


class Forbidden(RunnerError):
    """Authenticated, but not allowed."""

    code = "runner.forbidden"
    http_status = 403

    def __init__(
        self, message: str = "not allowed", *, hint: str = "ask for a role that may do this"
    ) -> None:
        super().__init__(message, hint=hint)


class RateLimited(RunnerError):
    """Over a rate limit; ``retry_after`` is how many seconds until a call may pass."""

    code = "runner.rate_limited"
    http_status = 429

    def __init__(self, task: str, retry_after: float) -> None:
        self.task, self.retry_after = task, retry_after
        super().__init__(
            f"rate limit of {task!r} exceeded",
            hint=f"retry after {retry_after:.3g}s",
        )


class CircuitOpen(RunnerError):
    """A circuit breaker is open after repeated failures; calls fail fast until it resets."""

    code = "runner.circuit_open"
    http_status = 503

    def __init__(self, task: str, retry_after: float) -> None:
        self.task, self.retry_after = task, retry_after
        super().__init__(
            f"circuit of {task!r} is open after repeated failures",
            hint=f"the next trial call is allowed in {retry_after:.3g}s",
        )


class TaskTimeoutError(RunnerError, TimeoutError):
    """A task ran past its deadline and was cancelled (``except TimeoutError`` catches it)."""

    code = "runner.timeout"
    http_status = 504

    def __init__(self, task: str, after: float) -> None:
        self.task, self.after = task, after
        super().__init__(
            f"task {task!r} timed out after {after:.3g}s and was cancelled",
            hint="raise the timeout's `after`, or make the task faster",
        )


class ResourceFailure(RunnerError):
    """A resource's backend (a database, a cache, a broker) failed a call, classified.

    ``code`` is ``<resource id>.<kind>`` (``db.unavailable``), so a caller learns which
    resource failed and how, never where it lives: the message names the resource id
    only. ``detail`` is the driver's own account (host, port, its error class), for the
    log and never for a caller. Subclasses say how the failure reads to a caller.
    """

    code = "runner.resource_failure"  # the class's; an instance's is `<resource>.<kind>`
    kind: ClassVar[str] = "failed"

    def __init__(self, resource: str, message: str, *, detail: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.resource = resource
        self.detail = detail
        self.code = f"{resource}.{self.kind}"  # type: ignore[misc]  # per resource


class ResourceUnavailable(ResourceFailure, ConnectionError):
    """The backend cannot take calls now (refused, lost, starting, full): retry later."""

    code = "runner.resource_unavailable"
    kind = "unavailable"
    http_status = 503

    def __init__(
        self,
        resource: str,
        why: str = "its backend does not answer",
        *,
        detail: str = "",
        retry_after: float = 1.0,
        hint: str = "retry shortly: calls go through again as soon as it answers",
    ) -> None:
        self.retry_after, self.why = retry_after, why
        super().__init__(resource, f"{resource!r} is unavailable: {why}", detail=detail, hint=hint)


class ResourceTimeout(ResourceFailure, TimeoutError):
    """A call to the backend ran past a deadline and was abandoned or cancelled."""

    code = "runner.resource_timeout"
    kind = "timeout"
    http_status = 504

    def __init__(
        self,
        resource: str,
        after: float,
        why: str = "",
        *,
        detail: str = "",
        hint: str = "",
    ) -> None:
        self.after = after
        super().__init__(
            resource,
            f"{resource!r} timed out: {why or f'a call took longer than {after:g}s'}",
            detail=detail,
            hint=hint or f"raise the timeouts of {resource!r}, or make the call cheaper",
        )


class InvalidData(ResourceFailure, ValueError):
    """The backend refused a value (too long, out of range, not storable): the caller's."""

    code = "runner.invalid_data"
    kind = "invalid_data"
    http_status = 422

    def __init__(self, resource: str, why: str, *, detail: str = "", hint: str = "") -> None:
        super().__init__(
            resource,
            f"{resource!r} refused the data: {why}",
            detail=detail,
            hint=hint or "send values the store can hold (check lengths and number ranges)",
        )


class _GroupError(RunnerError, ExceptionGroup):
    """An ExceptionGroup that also carries a code and a hint."""

    def __new__(cls, message: str, errors: Sequence[Exception], *, hint: str = "") -> Any:
        return super().__new__(cls, message, list(errors))

    def __init__(self, message: str, errors: Sequence[Exception], *, hint: str = "") -> None:
        ExceptionGroup.__init__(self, message, list(errors))
        self.hint = hint  # ``message`` is ExceptionGroup's own

    def __str__(self) -> str:
        return ExceptionGroup.__str__(self)

    def derive(self, excs: Sequence[Exception]) -> _GroupError:  # type: ignore[override]
        return type(self)(self.message, excs, hint=self.hint)


class InvalidAppError(_GroupError):
    """Several problems found before anything ran (definitions, configs), reported at once."""

    code = "runner.invalid_app"


class StartupError(_GroupError):
    """Several resources of one init wave failed (each a :class:`ResourceInitError`)."""

    code = "runner.startup"


class DisposeError(_GroupError):
    """One or more disposers (or the drain) failed; every other disposer still ran."""

    code = "runner.dispose"
