from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

import anyio

from ._calls import EventEmission, ResourceCall, TaskCall
from ._definitions import (
    AsyncContext,
    Definition,
    Event,
    Hook,
    Resource,
    Task,
    _is_generator,
    is_async_callable,
)
from ._plan import Plan, plan
from ._store import Store, suggest
from ._threads import ThreadSlots
from .errors import (
    DisposeError,
    DrainTimeoutError,
    HookError,
    InvalidDefinitionError,
    NotRegisteredError,
    ResourceInitError,
    ResourceNotReadyError,
    RunnerError,
    ShuttingDown,
    StartupError,
    TaskNotRoutedError,
)

Chain = Callable[[Any], Awaitable[Any]]
Disposer = Callable[[], Any]

_STARTING, _RUNNING, _DRAINING, _DISPOSING, _DISPOSED = range(5)
_STATES = ("starting", "running", "draining", "disposing", "disposed")


class _Entry:
    """A task or an event at run time: ``chain`` does the work, ``call`` guards it."""

    __slots__ = ("call", "chain", "composed", "definition", "local")

    def __init__(self, definition: Task | Event) -> None:
        self.definition = definition
        self.composed = False
        self.local: Chain | None = None  # an event's own hooks (under any mirror/divert)
        self.chain: Chain
        self.call: Callable[[Any], Coroutine[Any, Any, Any]]


class _HookEntry:
    __slots__ = ("call", "composer", "hook")

    def __init__(self, hook: Hook) -> None:
        self.hook = hook
        self.call: Chain
        self.composer: Chain  # composes `call` on the first call


class Runtime:
    """A running app: call tasks, emit events, read resources, query the store.

    Get one from :func:`run`. Calls are refused with :class:`~runner.errors.ShuttingDown`
    once shutdown starts; calls made by work accepted before that still go through.
    """

    def __init__(self, plan: Plan, *, drain_timeout: float | None = 30.0) -> None:
        self.store: Store = plan.store
        self._plan = plan
        self._drain_timeout = drain_timeout
        self._state = _STARTING
        self._inflight = 0
        self._drained: anyio.Event | None = None
        self._drain_scope: anyio.CancelScope | None = None
        self._abandoned = False
        # Entered by run() before any init; shielded while rolling back or disposing.
        # Not a fresh shield scope: generator resources open scopes inside this one,
        # and scopes must close in the order they were opened.
        self._lifetime = anyio.CancelScope()
        self._accepted: ContextVar[bool] = ContextVar(f"runner.accepted.{id(self)}", default=False)
        self._values: dict[str, Any] = {}
        self._running, self._stopping = anyio.Event(), anyio.Event()
        self._threads: ThreadSlots | None = None  # made on the first sync call, in the loop
        self._routes: dict[str, tuple[str, Chain]] = {}  # task id -> (owner, run): tunnels
        self._classifiers: list[Callable[[Exception], Exception | None]] = []
        # (id, disposer, whether the disposer closes scopes its init opened: a generator's)
        self._initialised: list[tuple[str, Disposer | None, bool]] = []
        self._hooks = {h.id: self._hook_entry(h) for h in self.store.hooks.values()}
        self._tasks = {t.id: self._task_entry(t) for t in self.store.tasks.values()}
        self._events = {e.id: self._event_entry(e) for e in self.store.events.values()}

    # -- public API -------------------------------------------------------------

    @property
    def state(self) -> str:
        """``starting``, ``running``, ``draining``, ``disposing`` or ``disposed``."""
        return _STATES[self._state]

    async def wait_running(self) -> None:
        """Return once every resource is initialised (at once if that is done).

        For a resource that serves from a background task (an HTTP server binds its
        port in ``init`` but answers only when the whole app is up)."""
        await self._running.wait()

    async def wait_stopping(self) -> None:
        """Return once shutdown has begun (or startup failed): time to stop taking work."""
        await self._stopping.wait()

    @property
    def drain_timeout(self) -> float | None:
        """How long shutdown waits for in-flight work (``None``: as long as it takes)."""
        return self._drain_timeout

    def extend_drain(self, seconds: float) -> None:
        """Wait at least ``seconds`` for in-flight work on shutdown.

        For a resource that promises its callers a grace period (an HTTP server's
        ``shutdown_grace``): the drain must not stop before that promise does."""
        if self._drain_timeout is not None:
            self._drain_timeout = max(self._drain_timeout, seconds)

    def route(self, task: Task | str, run: Chain, *, owner: str) -> None:
        """Run ``task`` through ``await run(input)`` instead of its own ``run``.

        For a tunnel client: the task (a ``remote`` placeholder, or a local task to be
        served elsewhere) keeps its middleware and schemas; only its core is replaced.
        A task has one router: a second ``owner`` raises
        :class:`~runner.errors.InvalidDefinitionError`."""
        entry = self._tasks.get(task if isinstance(task, str) else task.id)
        if entry is None:
            raise self._unknown("task", task, self._tasks)
        tid = entry.definition.id
        held = self._routes.get(tid)
        if held is not None and held[0] != owner:
            raise InvalidDefinitionError(
                f"task {tid!r} is routed by both {held[0]!r} and {owner!r}",
                hint="list the task in one tunnel's `tasks` only",
                owner=owner,
            )
        self._routes[tid] = (owner, run)
        if entry.composed:  # called before it was routed: compose again on the next call
            self._compose_task(entry)

    def mirror(self, event: Event | str, send: Chain) -> None:
        """After ``event``'s local hooks ran, ``await send(payload)`` too (a tunnel client).

        A failure of ``send`` propagates to the emitter, like a failing hook."""
        entry = self._event(event)
        local = entry.chain

        async def mirrored(payload: Any) -> None:
            await local(payload)
            await send(payload)

        entry.chain = mirrored

    def divert(self, event: Event | str, send: Chain) -> None:
        """Emits of ``event`` go to ``await send(payload)`` instead of its local hooks
        (after the payload's schema check): for a tunnel that queues the event, whose
        hooks then run where it is consumed, through :meth:`deliver`."""
        entry = self._event(event)
        definition = entry.definition
        assert isinstance(definition, Event)
        schema, eid = definition.payload_schema, definition.id

        async def diverted(payload: Any) -> None:
            if schema is not None:
                schema.check(payload, "payload", eid)  # type: ignore[union-attr]
            await send(payload)

        entry.chain = diverted

    async def deliver(self, event: Event | str, payload: Any = None) -> None:
        """Run ``event``'s local hooks for ``payload``, skipping any mirror or diversion:
        for a tunnel bringing the event from elsewhere. Refused with
        :class:`ShuttingDown` once shutdown began, like :meth:`emit`."""
        entry = self._event(event)
        local = entry.local
        assert local is not None
        async with self.accepted(f"delivery of {entry.definition.id!r}"):
            await local(payload)

    def _event(self, event: Event | str) -> _Entry:
        entry = self._events.get(event if isinstance(event, str) else event.id)
        if entry is None:
            raise self._unknown("event", event, self._events)
        return entry

    @property
    def shutting_down(self) -> bool:
        """True once shutdown has started (new work is refused)."""
        return self._state > _RUNNING

    @property
    def in_flight(self) -> int:
        """Task runs and emits accepted from outside and not finished yet."""
        return self._inflight

    @property
    def value(self) -> Any:
        """The value of the app (root) resource."""
        return self._values.get(self.store.root.id)

    def run_task(self, task: Task | str, input: Any = None) -> Coroutine[Any, Any, Any]:
        """Run ``task`` with ``input`` through its middleware: ``await rt.run_task(t, x)``."""
        entry = self._tasks.get(task if isinstance(task, str) else task.id)
        if entry is None:
            raise self._unknown("task", task, self._tasks)
        return entry.call(input)

    def emit(self, event: Event | str, payload: Any = None) -> Coroutine[Any, Any, Any]:
        """Emit ``event``: its hooks run in order; ``await rt.emit(e, payload)``."""
        entry = self._events.get(event if isinstance(event, str) else event.id)
        if entry is None:
            raise self._unknown("event", event, self._events)
        return entry.call(payload)

    def resource(self, resource: Resource | str) -> Any:
        """The value of an initialised resource."""
        rid = resource if isinstance(resource, str) else resource.id
        try:
            return self._values[rid]
        except KeyError:
            if rid in self.store.resources:
                raise ResourceNotReadyError("runtime", rid) from None
            raise self._unknown("resource", resource, self.store.resources) from None

    def abandon_drain(self) -> None:
        """Stop waiting for in-flight work and go on disposing (a second signal does this)."""
        self._abandoned = True  # also when asked before the drain began (a quick 2nd ^C)
        if self._drain_scope is not None:
            self._drain_scope.cancel()

    @asynccontextmanager
    async def accepted(self, what: str = "a request") -> AsyncIterator[None]:
        """Count the work inside as accepted: shutdown drains it, tasks it runs are allowed.

        For an edge that does more than one call per request (an HTTP server reads the
        body, then runs the task): a request accepted before shutdown finishes, even if
        its task starts after shutdown began. Raises :class:`ShuttingDown` when entered
        after shutdown began."""
        if self._accepted.get() and self._state < _DISPOSING:
            yield
            return
        if self._state > _RUNNING:
            raise ShuttingDown(what)
        self._inflight += 1
        token = self._accepted.set(True)
        try:
            yield
        finally:
            self._accepted.reset(token)
            self._done_one()

    def _done_one(self) -> None:
        self._inflight -= 1
        if not self._inflight and self._drained is not None:
            self._drained.set()

    def _unknown(self, kind: str, what: Definition | str, ids: Any) -> NotRegisteredError:
        id = what if isinstance(what, str) else what.id
        return NotRegisteredError(kind, id, suggest(id, ids))

    # -- calls ------------------------------------------------------------------

    def _guard(self, entry: _Entry, what: str) -> Callable[[Any], Coroutine[Any, Any, Any]]:
        accepted = self._accepted

        async def call(arg: Any = None) -> Any:
            # The admission of accepted(), inlined: this runs on every outer call.
            if accepted.get() and self._state < _DISPOSING:  # nested in accepted work
                return await entry.chain(arg)
            if self._state > _RUNNING:
                raise ShuttingDown(what)
            self._inflight += 1
            token = accepted.set(True)
            try:
                return await entry.chain(arg)
            finally:
                accepted.reset(token)
                self._done_one()

        return call

    def _task_entry(self, task: Task) -> _Entry:
        entry = _Entry(task)

        def compose_then_call(input: Any) -> Awaitable[Any]:
            self._compose_task(entry)
            return entry.chain(input)

        entry.chain = compose_then_call
        entry.call = self._guard(entry, f"task {task.id!r}")
        return entry

    def _compose_task(self, entry: _Entry) -> None:
        task = entry.definition
        assert isinstance(task, Task)
        chain = self._task_core(task)
        for mw, config in reversed(self._plan.task_layers[task.id]):
            chain = self._task_layer(task, mw.run, self._resolve(mw), config, chain)
        entry.chain = chain
        entry.composed = True

    def _task_core(self, task: Task) -> Chain:
        tid = task.id
        routed = self._routes.get(tid)
        if routed is not None:
            fn: Chain = routed[1]
        elif task.run is None:

            async def not_routed(input: Any) -> Any:
                raise TaskNotRoutedError(tid)

            return not_routed
        else:
            deps = self._resolve(task)
            fn = partial(task.run, **deps) if deps else task.run
        if routed is None and not is_async_callable(task.run):
            sync = fn

            async def fn(input: Any) -> Any:
                # A worker thread keeps the loop free; a cancelled caller (a timeout,
                # a second signal) is released at once and the thread runs out alone.
                return await self._in_thread(sync, input)

        if self._classifiers:
            fn = self._classifying(fn)
        ins, outs = task.input_schema, task.result_schema
        if ins is None and outs is None:
            return fn
        inner = fn

        async def validated(input: Any) -> Any:
            if ins is not None:
                ins.check(input, "input", tid)  # type: ignore[union-attr]
            result = await inner(input)
            if outs is not None:
                outs.check(result, "result", tid)  # type: ignore[union-attr]
            return result

        return validated

    @staticmethod
    def _task_layer(
        task: Task, run: Callable[..., Any], deps: dict[str, Any], config: Any, nxt: Chain
    ) -> Chain:
        if deps:
            run = partial(run, **deps)

        def layer(input: Any) -> Awaitable[Any]:
            return run(TaskCall(task, input, nxt), config)  # type: ignore[no-any-return]

        return layer

    def add_error_classifier(self, classify: Callable[[Exception], Exception | None]) -> None:
        """Pass every exception a task or hook raises through ``classify`` first.

        For a resource whose client library has no single place to translate its
        failures (pymongo's database object): ``classify(exc)`` returns the typed error
        to raise instead (``ResourceUnavailable``, ...), or ``None`` to leave ``exc`` as
        it is. Typed errors (:class:`~runner.errors.RunnerError`) are never passed. With
        no classifier, calls pay nothing for this."""
        self._classifiers.append(classify)
        for entry in self._tasks.values():
            if entry.composed:
                self._compose_task(entry)
        for hook in self._hooks.values():
            hook.call = hook.composer

    def _classifying(self, fn: Chain) -> Chain:
        classifiers = self._classifiers

        async def classified(arg: Any) -> Any:
            try:
                return await fn(arg)
            except RunnerError:
                raise
            except Exception as exc:
                for classify in classifiers:
                    found = classify(exc)
                    if found is not None and found is not exc:
                        raise found from exc
                raise

        return classified

    def _event_entry(self, event: Event) -> _Entry:
        entry = _Entry(event)
        hooks = [self._hooks[h.id] for h in self._plan.hooks[event.id]]
        schema, eid = event.payload_schema, event.id

        async def dispatch(payload: Any) -> None:
            if schema is not None:
                schema.check(payload, "payload", eid)  # type: ignore[union-attr]
            if not hooks:
                return
            emission = EventEmission(eid, payload)
            for h in hooks:
                try:
                    await h.call(emission)
                except Exception as exc:
                    raise HookError(h.hook.id, eid, exc) from exc
                if emission._stopped:
                    return

        entry.chain = entry.local = dispatch
        entry.call = self._guard(entry, f"emit of {eid!r}")
        return entry

    def _hook_entry(self, hook: Hook) -> _HookEntry:
        entry = _HookEntry(hook)

        def compose_then_call(emission: EventEmission) -> Awaitable[Any]:
            deps = self._resolve(hook)
            fn = partial(hook.run, **deps) if deps else hook.run
            if not is_async_callable(hook.run):
                sync = fn

                async def fn(emission: EventEmission) -> Any:
                    return await self._in_thread(sync, emission)

            if self._classifiers:
                fn = self._classifying(fn)
            entry.call = fn
            return fn(emission)  # type: ignore[no-any-return]

        entry.call = entry.composer = compose_then_call
        return entry

    def _in_thread(self, fn: Callable[[Any], Any], arg: Any) -> Awaitable[Any]:
        if self._threads is None:
            self._threads = ThreadSlots()
        return self._threads.run(fn, arg)

    def _resolve(self, owner: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, ref in owner.dependencies.items():
            d = self.store.find(ref.id)
            if isinstance(d, Resource):
                if ref.id not in self._values:
                    raise ResourceNotReadyError(owner.id, ref.id)
                out[key] = self._values[ref.id]
            elif isinstance(d, Task):
                out[key] = self._tasks[ref.id].call
            elif isinstance(d, Event):
                out[key] = self._events[ref.id].call
            else:
                assert d is None or isinstance(d, AsyncContext)
                out[key] = d
        return out

    # -- lifecycle --------------------------------------------------------------

    async def _start(self) -> None:
        try:
            for wave in self._plan.waves:
                await self._init_wave([self.store.resources[r] for r in wave])
        except BaseException as exc:
            self._stopping.set()
            self._lifetime.shield = True
            errors = await self._dispose_all()
            self._lifetime.shield = False
            if errors and not isinstance(exc, Exception):  # cancelled: do not hide the failures
                raise DisposeError(
                    "startup was interrupted and rolling back failed",
                    errors,
                    hint="every other disposer ran; see each problem below",
                ) from exc
            for err in errors:
                exc.add_note(f"rolling back, the disposer failed: {type(err).__name__}: {err}")
            raise
        for entry in self._tasks.values():  # compose now: the first call pays nothing
            if not entry.composed:
                self._compose_task(entry)
        self._state = _RUNNING
        self._running.set()

    async def _init_wave(self, wave: Sequence[Resource]) -> None:
        failures: list[tuple[int, ResourceInitError]] = []

        async def init(i: int, res: Resource) -> None:
            try:
                await self._init_resource(res)
            except Exception as exc:
                err = ResourceInitError(res.id, exc)
                err.__cause__ = exc
                failures.append((i, err))

        generators = [(i, r) for i, r in enumerate(wave) if _is_generator(r.init)]
        plain = [(i, r) for i, r in enumerate(wave) if not _is_generator(r.init)]
        if len(plain) == 1:
            await init(*plain[0])
        elif plain:
            async with anyio.create_task_group() as tg:
                for i, r in plain:
                    tg.start_soon(init, i, r)
        # Generators run in this task: cancel scopes they open must close here too.
        for i, r in generators:
            if failures:
                break
            await init(i, r)
        if failures:
            errors = [e for _, e in sorted(failures, key=lambda f: f[0])]
            if len(errors) == 1:
                raise errors[0]
            raise StartupError(
                f"{len(errors)} resources failed to initialise",
                errors,
                hint="the resources initialised before them were disposed",
            )

    async def _init_resource(self, res: Resource) -> None:
        deps = self._resolve(res)
        disposer: list[Disposer | None] = [None]

        async def core(config: Any) -> Any:
            value, disposer[0] = await _initialise(res, config, deps)
            return value

        chain: Chain = core
        for mw, config in reversed(self._plan.resource_layers[res.id]):
            chain = self._resource_layer(res, mw.run, self._resolve(mw), config, chain)
        try:
            with current_resource.provide(res):
                value = await chain(res.config)
        except BaseException:
            if disposer[0] is not None:  # the core succeeded, a middleware failed after it
                shield, self._lifetime.shield = self._lifetime.shield, True
                try:
                    await _call(disposer[0])
                finally:
                    self._lifetime.shield = shield
            raise
        self._values[res.id] = value
        self._initialised.append((res.id, disposer[0], _is_generator(res.init)))

    @staticmethod
    def _resource_layer(
        res: Resource, run: Callable[..., Any], deps: dict[str, Any], config: Any, nxt: Chain
    ) -> Chain:
        if deps:
            run = partial(run, **deps)

        def layer(cfg: Any) -> Awaitable[Any]:
            return run(ResourceCall(res, cfg, nxt), config)  # type: ignore[no-any-return]

        return layer

    async def _dispose_all(self) -> list[Exception]:
        errors: list[Exception] = []
        while self._initialised:
            rid, disposer, closes_scopes = self._initialised.pop()
            self._values.pop(rid, None)
            if disposer is None:
                continue
            try:
                if closes_scopes:
                    await _call(disposer)  # closes the scopes it opened: no scope around it
                else:  # shielded even from a scope a generator resource cancelled
                    with anyio.CancelScope(shield=True):
                        await _call(disposer)
            except Exception as exc:
                exc.add_note(f"while disposing resource {rid!r}")
                errors.append(exc)
        return errors

    async def _shutdown(self) -> None:
        problems: list[Exception] = []
        self._lifetime.shield = True
        self._state = _DRAINING
        self._stopping.set()
        if self._inflight:
            if not self._abandoned:
                self._drained = anyio.Event()
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(self._drain_timeout) as scope,
                ):
                    self._drain_scope = scope
                    await self._drained.wait()
            if self._inflight:
                problems.append(DrainTimeoutError(self._inflight, self._abandoned))
        self._state = _DISPOSING
        problems += await self._dispose_all()
        self._state = _DISPOSED
        if problems:
            raise DisposeError(
                f"{len(problems)} problem(s) while shutting down",
                problems,
                hint="every other disposer ran; see each problem below",
            )


async def _initialise(res: Resource, config: Any, deps: dict[str, Any]) -> tuple[Any, Any]:
    init = res.init
    if init is None:
        return None, None
    if inspect.isasyncgenfunction(init):
        agen = init(config, **deps)
        try:
            value = await agen.__anext__()
        except StopAsyncIteration:
            raise _no_yield(res) from None
        return value, partial(_close_async_generator, res, agen)
    if inspect.isgeneratorfunction(init):
        gen = init(config, **deps)
        try:
            value = next(gen)
        except StopIteration:
            raise _no_yield(res) from None
        return value, partial(_close_generator, res, gen)
    value = init(config, **deps)
    if inspect.isawaitable(value):
        value = await value
    return value, (partial(res.dispose, value) if res.dispose is not None else None)


def _no_yield(res: Resource) -> InvalidDefinitionError:
    return InvalidDefinitionError(
        f"resource {res.id!r}: the init generator returned without yielding a value",
        hint="yield the resource's value exactly once",
    )


def _twice(res: Resource) -> InvalidDefinitionError:
    return InvalidDefinitionError(
        f"resource {res.id!r}: the init generator yielded more than once",
        hint="yield the resource's value exactly once; put disposal code after it",
    )


async def _close_async_generator(res: Resource, agen: Any) -> None:
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return
    await agen.aclose()
    raise _twice(res)


def _close_generator(res: Resource, gen: Any) -> None:
    try:
        next(gen)
    except StopIteration:
        return
    gen.close()
    raise _twice(res)


async def _call(fn: Callable[[], Any]) -> None:
    result = fn()
    if inspect.isawaitable(result):
        await result


@asynccontextmanager
async def run(
    app: Resource,
    *,
    overrides: Sequence[Definition] = (),
    drain_timeout: float | None = 30.0,
) -> AsyncIterator[Runtime]:
    """Initialise ``app`` and its registrations; dispose them when the block exits.

    ``async with runner.run(app, overrides=[...]) as rt: await rt.run_task(...)``.
    Definition problems (duplicates, missing dependencies, cycles) are raised before
    anything is initialised; an init failure disposes what was initialised and raises
    :class:`~runner.errors.ResourceInitError`. On exit, new work is refused, accepted work
    is drained (up to ``drain_timeout`` seconds; ``None`` waits), then every resource is
    disposed in reverse order; failures are raised together as
    :class:`~runner.errors.DisposeError`.
    """
    rt = Runtime(plan(Store.build(app, overrides)), drain_timeout=drain_timeout)
    with rt._lifetime, current_runtime.provide(rt):
        await rt._start()
        try:
            yield rt
        finally:
            await rt._shutdown()


#: The runtime of the app being run: set for the app's whole life (inits, tasks,
#: hooks, disposers). A resource that needs the runtime itself (to find tasks by tag
#: and run them, like an HTTP server) reads ``runner.current_runtime.use()`` in init.
current_runtime = AsyncContext("runtime", meta={"description": "the running runtime"})

#: The resource being initialised: set around each resource's init (and the middleware
#: around it). A component that names itself in its errors (``db.unavailable``) reads
#: ``runner.current_resource.use().id`` in its init.
current_resource = AsyncContext("resource", meta={"description": "the resource being initialised"})
