from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, TypeAlias

from ._schema import Schema, compile_schema
from .errors import ContextNotProvidedError, InvalidDefinitionError

SchemaLike: TypeAlias = "Mapping[str, Any] | bool | Schema | None"
Meta: TypeAlias = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Ref:
    """A dependency on a registered id; ``optional`` injects ``None`` when it is absent."""

    id: str
    optional: bool = False


def optional(target: Definition | str) -> Ref:
    """Mark a dependency optional: ``None`` is injected when ``target`` is not registered."""
    return Ref(_id_of(target, "optional()"), optional=True)


DependencyLike: TypeAlias = "Definition | str | Ref"


@dataclass(frozen=True, slots=True, eq=False)
class Definition:
    """Base of every definition: a global ``id`` and free-form ``meta``."""

    kind: ClassVar[str] = "definition"
    id: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidDefinitionError(
                f"a {self.kind} needs a non-empty string id, got {self.id!r}",
                hint='give it an id such as "users.create"',
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _callable(self, name: str, value: Any, *, required: bool = True) -> None:
        if value is None and not required:
            return
        if not callable(value):
            raise InvalidDefinitionError(
                f"{self.kind} {self.id!r}: `{name}` must be callable, got {type(value).__name__}",
                hint=f"pass a function as `{name}=`",
            )


def _id_of(target: Any, where: str) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, Definition):
        return target.id
    raise InvalidDefinitionError(
        f"{where}: expected a definition or an id string, got {type(target).__name__}",
        hint="pass the definition object itself or its id",
    )


def _deps(owner: Definition, deps: Mapping[str, Any]) -> Mapping[str, Ref]:
    out: dict[str, Ref] = {}
    for key, target in deps.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidDefinitionError(
                f"{owner.kind} {owner.id!r}: dependency key {key!r} is not a Python identifier",
                hint="dependencies arrive as keyword arguments; use a name like `db`",
            )
        out[key] = target if isinstance(target, Ref) else Ref(_id_of(target, f"{owner.id}.{key}"))
    return MappingProxyType(out)


def _check_config(owner: Definition, schema: Schema | None, config: Any) -> Any:
    if schema is not None:
        schema.check(config, "config", owner.id)
    return config


@dataclass(frozen=True, slots=True, eq=False)
class TagUse:
    """A tag attached with a config (``tag.with_(config)``)."""

    tag: Tag
    config: Any = None

    @property
    def id(self) -> str:
        return self.tag.id


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Tag(Definition):
    """A label with an optional config, attached to tasks and resources and queried by id."""

    kind: ClassVar[str] = "tag"
    _: KW_ONLY
    config_schema: SchemaLike = None
    config: Any = None
    meta: Meta = field(default_factory=dict)

    def __post_init__(self) -> None:
        Definition.__post_init__(self)
        self._set("config_schema", compile_schema(self.config_schema, self.id))

    @property
    def tag(self) -> Tag:
        """The tag itself (so a bare tag and ``tag.with_(...)`` read alike)."""
        return self

    def with_(self, config: Any) -> TagUse:
        """Attach this tag with ``config`` (validated against ``config_schema`` now)."""
        assert self.config_schema is None or isinstance(self.config_schema, Schema)
        return TagUse(self, _check_config(self, self.config_schema, config))

    def extract(self, definition: Task | Resource) -> TagUse | None:
        """The use of this tag on ``definition`` (with its config), or ``None``."""
        for use in definition.tags:
            if use.tag.id == self.id:
                return use if isinstance(use, TagUse) else TagUse(use, use.config)
        return None

    def exists(self, definition: Task | Resource) -> bool:
        """Whether ``definition`` carries this tag."""
        return self.extract(definition) is not None


def _tags(tags: Sequence[Tag | TagUse]) -> tuple[TagUse, ...]:
    out = []
    for t in tags:
        if isinstance(t, Tag):
            t = TagUse(t, t.config)
        if not isinstance(t, TagUse):
            raise InvalidDefinitionError(
                f"a tag entry must be a Tag or tag.with_(config), got {type(t).__name__}",
                hint="define the tag with runner.Tag(...) and attach it (or tag.with_(config))",
            )
        out.append(t)
    return tuple(out)


@dataclass(frozen=True, slots=True, eq=False)
class MiddlewareUse:
    """A middleware attached to a task or resource, with the config for that use."""

    id: str
    config: Any = None
    configured: bool = False


def _middleware(owner: Definition, entries: Sequence[Any]) -> tuple[MiddlewareUse, ...]:
    out = []
    for entry in entries:
        if isinstance(entry, MiddlewareUse):
            out.append(entry)
        elif isinstance(entry, TaskMiddleware | ResourceMiddleware):
            out.append(MiddlewareUse(entry.id, entry.config))
        elif isinstance(entry, str):
            out.append(MiddlewareUse(entry))
        else:
            raise InvalidDefinitionError(
                f"{owner.kind} {owner.id!r}: a middleware entry must be a middleware, its id, "
                f"or middleware.with_(config); got {type(entry).__name__}",
                hint="define it with runner.TaskMiddleware(...) and list it in `middleware=`",
            )
    return tuple(out)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Task(Definition):
    """A unit of work: ``run(input, **deps) -> result`` (sync or async).

    ``remote=True`` (and no ``run``) declares a placeholder for a task that lives on
    the other side of a tunnel.
    """

    kind: ClassVar[str] = "task"
    _: KW_ONLY
    run: Callable[..., Any] | None = None
    dependencies: Mapping[str, DependencyLike] = field(default_factory=dict)
    middleware: Sequence[Any] = ()
    tags: Sequence[Tag | TagUse] = ()
    input_schema: SchemaLike = None
    result_schema: SchemaLike = None
    remote: bool = False
    meta: Meta = field(default_factory=dict)

    def __post_init__(self) -> None:
        Definition.__post_init__(self)
        if self.remote and self.run is not None:
            raise InvalidDefinitionError(
                f"task {self.id!r} is remote and has a `run`",
                hint="a remote task is a placeholder: drop `run`, or drop `remote=True`",
            )
        self._callable("run", self.run, required=not self.remote)
        self._set("dependencies", _deps(self, self.dependencies))
        self._set("middleware", _middleware(self, self.middleware))
        self._set("tags", _tags(self.tags))
        self._set("input_schema", compile_schema(self.input_schema, self.id))
        self._set("result_schema", compile_schema(self.result_schema, self.id))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Resource(Definition):
    """A singleton value with a lifecycle.

    ``init(config, **deps) -> value`` (sync or async) with an optional ``dispose(value)``,
    or an async (or sync) generator: the code before ``yield value`` initialises, the
    code after it disposes. ``register`` lists child definitions (the app is a resource).
    """

    kind: ClassVar[str] = "resource"
    _: KW_ONLY
    init: Callable[..., Any] | None = None
    dispose: Callable[[Any], Any] | None = None
    config: Any = None
    config_schema: SchemaLike = None
    dependencies: Mapping[str, DependencyLike] = field(default_factory=dict)
    middleware: Sequence[Any] = ()
    tags: Sequence[Tag | TagUse] = ()
    register: Sequence[Definition] = ()
    meta: Meta = field(default_factory=dict)

    def __post_init__(self) -> None:
        Definition.__post_init__(self)
        self._callable("init", self.init, required=False)
        self._callable("dispose", self.dispose, required=False)
        if self.dispose is not None and self.init is None:
            raise InvalidDefinitionError(
                f"resource {self.id!r} has a `dispose` but no `init`",
                hint="dispose(value) receives what init returned: add an `init`",
            )
        if self.dispose is not None and _is_generator(self.init):
            raise InvalidDefinitionError(
                f"resource {self.id!r} has a generator `init` and a `dispose`",
                hint="put the disposal code after `yield` in the generator, and drop `dispose`",
            )
        self._set("dependencies", _deps(self, self.dependencies))
        self._set("middleware", _middleware(self, self.middleware))
        self._set("tags", _tags(self.tags))
        self._set("config_schema", compile_schema(self.config_schema, self.id))
        for child in self.register:
            if not isinstance(child, Definition):
                raise InvalidDefinitionError(
                    f"resource {self.id!r} registers {child!r}, which is not a definition",
                    hint="register Task, Resource, Event, Hook, middleware, Tag or AsyncContext",
                )
        self._set("register", tuple(self.register))

    def with_(self, config: Any) -> Resource:
        """The same resource with ``config`` (validated against ``config_schema`` now)."""
        assert self.config_schema is None or isinstance(self.config_schema, Schema)
        _check_config(self, self.config_schema, config)
        return dataclasses.replace(self, config=config)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Event(Definition):
    """A named signal; emitting it runs the hooks that listen to it."""

    kind: ClassVar[str] = "event"
    _: KW_ONLY
    payload_schema: SchemaLike = None
    tags: Sequence[Tag | TagUse] = ()
    meta: Meta = field(default_factory=dict)

    def __post_init__(self) -> None:
        Definition.__post_init__(self)
        self._set("payload_schema", compile_schema(self.payload_schema, self.id))
        self._set("tags", _tags(self.tags))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Hook(Definition):
    """``run(event, **deps)`` on the events named by ``on`` (ids, definitions, or ``"*"``)."""

    kind: ClassVar[str] = "hook"
    _: KW_ONLY
    on: Event | str | Sequence[Event | str]
    run: Callable[..., Any]
    order: float = 0
    dependencies: Mapping[str, DependencyLike] = field(default_factory=dict)
    tags: Sequence[Tag | TagUse] = ()
    meta: Meta = field(default_factory=dict)
    events: tuple[str, ...] = field(init=False)
    """The ids ``on`` names (``"*"`` for every event)."""

    def __post_init__(self) -> None:
        Definition.__post_init__(self)
        self._callable("run", self.run)
        on = [self.on] if isinstance(self.on, str | Event) else list(self.on)
        self._set("events", tuple(_id_of(e, f"hook {self.id!r} on") for e in on))
        if not self.events:
            raise InvalidDefinitionError(
                f"hook {self.id!r} listens to no event", hint='set `on` to an event id or "*"'
            )
        self._set("dependencies", _deps(self, self.dependencies))
        self._set("tags", _tags(self.tags))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TaskMiddleware(Definition):
    """``async run(call, config, **deps)`` around task runs; ``await call.next(input)``.

    ``everywhere=True`` (or a predicate over tasks) applies it to every task, outside the
    task's own middleware.
    """

    kind: ClassVar[str] = "task middleware"
    _: KW_ONLY
    run: Callable[..., Any]
    config: Any = None
    config_schema: SchemaLike = None
    dependencies: Mapping[str, DependencyLike] = field(default_factory=dict)
    everywhere: bool | Callable[[Task], bool] = False
    tags: Sequence[Tag | TagUse] = ()
    meta: Meta = field(default_factory=dict)

    def __post_init__(self) -> None:
        _middleware_post_init(self)

    def with_(self, config: Any) -> MiddlewareUse:
        """Use this middleware with ``config`` (validated against ``config_schema`` now)."""
        assert self.config_schema is None or isinstance(self.config_schema, Schema)
        return MiddlewareUse(self.id, _check_config(self, self.config_schema, config), True)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ResourceMiddleware(Definition):
    """``async run(call, config, **deps)`` around resource inits; ``await call.next(config)``."""

    kind: ClassVar[str] = "resource middleware"
    _: KW_ONLY
    run: Callable[..., Any]
    config: Any = None
    config_schema: SchemaLike = None
    dependencies: Mapping[str, DependencyLike] = field(default_factory=dict)
    everywhere: bool | Callable[[Resource], bool] = False
    tags: Sequence[Tag | TagUse] = ()
    meta: Meta = field(default_factory=dict)

    def __post_init__(self) -> None:
        _middleware_post_init(self)

    def with_(self, config: Any) -> MiddlewareUse:
        """Use this middleware with ``config`` (validated against ``config_schema`` now)."""
        assert self.config_schema is None or isinstance(self.config_schema, Schema)
        return MiddlewareUse(self.id, _check_config(self, self.config_schema, config), True)


def _middleware_post_init(mw: TaskMiddleware | ResourceMiddleware) -> None:
    Definition.__post_init__(mw)
    mw._callable("run", mw.run)
    if not is_async_callable(mw.run):
        raise InvalidDefinitionError(
            f"{mw.kind} {mw.id!r}: `run` must be an async function (it awaits call.next)",
            hint="declare it `async def run(call, config, **deps)`",
        )
    if not (isinstance(mw.everywhere, bool) or callable(mw.everywhere)):
        raise InvalidDefinitionError(
            f"{mw.kind} {mw.id!r}: `everywhere` must be a bool or a predicate",
            hint="use everywhere=True, or a function that takes the definition",
        )
    mw._set("dependencies", _deps(mw, mw.dependencies))
    mw._set("tags", _tags(mw.tags))
    mw._set("config_schema", compile_schema(mw.config_schema, mw.id))


_UNSET: Any = object()


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AsyncContext(Definition):
    """A value scoped to a call tree (contextvars): ``provide`` it, ``use`` it below.

    It flows into tasks, hooks and middleware called inside ``provide`` and into the
    children of anyio task groups started there.
    """

    kind: ClassVar[str] = "async context"
    _: KW_ONLY
    meta: Meta = field(default_factory=dict)
    _var: ContextVar[Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        Definition.__post_init__(self)
        self._set("_var", ContextVar(f"runner.context.{self.id}"))

    def provide(self, value: Any) -> Provision:
        """``with ctx.provide(value):`` (or ``async with``) makes ``value`` current below."""
        return Provision(self._var, value)

    def use(self) -> Any:
        """The current value; raises :class:`ContextNotProvidedError` outside ``provide``."""
        value = self._var.get(_UNSET)
        if value is _UNSET:
            raise ContextNotProvidedError(self.id)
        return value

    def try_use(self, default: Any = None) -> Any:
        """The current value, or ``default`` outside ``provide``."""
        return self._var.get(default)


class Provision:
    """The context manager returned by :meth:`AsyncContext.provide` (sync and async)."""

    __slots__ = ("_tokens", "_value", "_var")

    def __init__(self, var: ContextVar[Any], value: Any) -> None:
        self._var, self._value = var, value
        self._tokens: list[Token[Any]] = []

    def __enter__(self) -> Any:
        self._tokens.append(self._var.set(self._value))
        return self._value

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._var.reset(self._tokens.pop())

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(t, e, tb)


def is_async_callable(fn: Any) -> bool:
    """True for ``async def`` functions, partials of them and objects with an async ``__call__``."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # the bound __call__ of an instance
    )


def _is_generator(fn: Any) -> bool:
    return inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn)
