from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from types import FunctionType
from typing import Any

from ._definitions import (
    AsyncContext,
    Definition,
    Event,
    Hook,
    MiddlewareUse,
    Resource,
    ResourceMiddleware,
    Task,
    TaskMiddleware,
)
from ._graph import find_cycles, waves
from ._schema import Schema
from ._store import Store, raise_problems, suggest
from .errors import (
    CycleError,
    DefinitionError,
    InvalidDefinitionError,
    MissingDependencyError,
    ValidationError,
)

Layer = tuple[Any, Any]  # (middleware definition, config of this use)
_INJECTABLE = (Resource, Task, Event, AsyncContext)


@dataclass(frozen=True, slots=True)
class Plan:
    """What the runtime needs, computed once from a checked store."""

    store: Store
    task_layers: dict[str, list[Layer]]
    resource_layers: dict[str, list[Layer]]
    waves: list[list[str]]
    hooks: dict[str, list[Hook]]


def plan(store: Store) -> Plan:
    """Check the store (dependencies, middleware, hooks, configs, cycles) and plan the run.

    Every problem found is raised at once (see :func:`raise_problems`).
    """
    problems: list[DefinitionError] = []
    edges: dict[str, list[str]] = {}
    for d in store:
        edges[d.id] = list(_dependency_ids(store, d, problems))
    task_layers = _layers(store, store.tasks.values(), TaskMiddleware, edges, problems)
    resource_layers = _layers(store, store.resources.values(), ResourceMiddleware, edges, problems)
    hooks = _hooks(store, problems)
    for r in store.resources.values():
        _check_config(r, problems)
    for d in store:
        _check_signature(d, problems)
    raise_problems(problems)
    cycles = find_cycles(edges)
    raise_problems([CycleError(c) for c in cycles])
    return Plan(store, task_layers, resource_layers, _waves(store, edges, hooks), hooks)


def _dependency_ids(store: Store, d: Definition, problems: list[DefinitionError]) -> Iterable[str]:
    for key, ref in getattr(d, "dependencies", {}).items():
        target = store.find(ref.id)
        if target is None:
            if not ref.optional:
                problems.append(
                    MissingDependencyError(d.id, key, ref.id, suggest(ref.id, _ids(store)))
                )
        elif not isinstance(target, _INJECTABLE):
            problems.append(
                InvalidDefinitionError(
                    f"{d.kind} {d.id!r} depends on {target.kind} {ref.id!r} (as {key!r}), "
                    "which cannot be injected",
                    hint="depend on resources, tasks, events or async contexts",
                )
            )
        else:
            yield ref.id


def _layers(
    store: Store,
    owners: Iterable[Task | Resource],
    kind: type[TaskMiddleware] | type[ResourceMiddleware],
    edges: dict[str, list[str]],
    problems: list[DefinitionError],
) -> dict[str, list[Layer]]:
    everywhere = [m for m in store if isinstance(m, kind) and m.everywhere is not False]
    # A global middleware skips what it depends on itself, or it would wrap its own deps.
    closures = {m.id: _reachable(edges, m.id) for m in everywhere}
    out: dict[str, list[Layer]] = {}
    defaults_used: set[str] = set()
    for owner in owners:
        local = [u for u in owner.middleware if _known(store, owner, u, kind, problems)]
        local_ids = {u.id for u in local}
        layers: list[Layer] = [
            (m, m.config)
            for m in everywhere
            if m.id not in local_ids and owner.id not in closures[m.id] and _applies(m, owner)
        ]
        for use in local:
            mw = store.get(use.id)
            assert isinstance(mw, TaskMiddleware | ResourceMiddleware)
            layers.append((mw, use.config if use.configured else mw.config))
        for mw, config in layers:
            if config is mw.config and mw.id not in defaults_used:
                defaults_used.add(mw.id)
                _check_config(mw, problems)
        out[owner.id] = layers
        edges[owner.id].extend(m.id for m, _ in layers)
    return out


def _applies(mw: TaskMiddleware | ResourceMiddleware, owner: Any) -> bool:
    rule = mw.everywhere
    return rule is True or (callable(rule) and bool(rule(owner)))


def _known(
    store: Store,
    owner: Definition,
    use: MiddlewareUse,
    kind: type[Definition],
    problems: list[DefinitionError],
) -> bool:
    target = store.find(use.id)
    if target is None:
        problems.append(
            MissingDependencyError(owner.id, "middleware", use.id, suggest(use.id, _ids(store)))
        )
        return False
    if not isinstance(target, kind):
        problems.append(
            InvalidDefinitionError(
                f"{owner.kind} {owner.id!r} lists {target.kind} {use.id!r} as middleware",
                hint=f"a {owner.kind} takes {kind.kind} definitions here",
            )
        )
        return False
    return True


def _reachable(edges: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(edges.get(n, ()))
    return seen


def _hooks(store: Store, problems: list[DefinitionError]) -> dict[str, list[Hook]]:
    events = store.events
    out: dict[str, list[Hook]] = {e: [] for e in events}
    for hook in store.hooks.values():
        for target in hook.events:
            if target == "*":
                for hooks in out.values():
                    hooks.append(hook)
            elif target in events:
                out[target].append(hook)
            else:
                problems.append(
                    MissingDependencyError(hook.id, "on", target, suggest(target, events))
                )
    for hooks in out.values():
        # duplicates come from a hook that lists an event and "*": it runs once
        unique = {h.id: h for h in hooks}.values()
        hooks[:] = sorted(unique, key=lambda h: (h.order, store.registration_index(h.id)))
    return out


_CALLS = {  # kind -> (attribute, positional parameters)
    Task: ("run", ("input",)),
    Resource: ("init", ("config",)),
    Hook: ("run", ("event",)),
    TaskMiddleware: ("run", ("call", "config")),
    ResourceMiddleware: ("run", ("call", "config")),
}


def _check_signature(d: Definition, problems: list[DefinitionError]) -> None:
    """The callable must accept what the runtime will pass: positionals, then deps by key."""
    attr, positional = _CALLS.get(type(d), ("", ()))
    fn = getattr(d, attr, None)
    keys = list(getattr(d, "dependencies", ()))
    if fn is None or _fits(fn, len(positional), keys):
        return
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    try:
        sig.bind(*positional, **dict.fromkeys(keys))
    except TypeError as exc:
        call = ", ".join([*positional, *(f"{k}=..." for k in keys)])
        name = getattr(fn, "__name__", attr)
        problems.append(
            InvalidDefinitionError(
                f"{d.kind} {d.id!r}: {name}{sig} cannot be called as {attr}({call}): {exc}",
                hint="take each dependency as a keyword parameter named like its key "
                "(or **deps), and declare a dependency for each extra parameter",
            )
        )


def _fits(fn: Any, npos: int, keys: list[str]) -> bool:
    """A fast yes for plain functions (inspect.signature costs ~9 µs a definition).

    Only ever answers True when ``fn(*npos_values, **keys)`` binds; anything else
    goes to ``inspect.signature`` for the exact verdict and message.
    """
    code = getattr(fn, "__code__", None)
    if not isinstance(fn, FunctionType) or code is None or code.co_posonlyargcount:
        return False
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    positional = names[: code.co_argcount]
    if len(positional) < npos or code.co_flags & inspect.CO_VARARGS:
        return False
    takes_any = bool(code.co_flags & inspect.CO_VARKEYWORDS)
    given = set(keys)
    if given & set(positional[:npos]) or not (takes_any or given <= set(names[npos:])):
        return False
    defaults = len(fn.__defaults__ or ())
    required = list(positional[npos : len(positional) - defaults])
    required += [n for n in names[code.co_argcount :] if n not in (fn.__kwdefaults__ or {})]
    return given.issuperset(required)


def _check_config(
    d: Resource | TaskMiddleware | ResourceMiddleware, problems: list[DefinitionError]
) -> None:
    schema = d.config_schema
    if isinstance(schema, Schema):
        try:
            schema.check(d.config, "config", d.id)
        except ValidationError as exc:
            problems.append(
                InvalidDefinitionError(exc.message, hint="pass a valid config with .with_()")
            )


def _waves(
    store: Store, edges: dict[str, list[str]], hooks: dict[str, list[Hook]]
) -> list[list[str]]:
    """Resources in init waves; a resource waits for every resource its callees need."""
    resources = store.resources
    needs = {r: _resources_needed(store, edges, hooks, r) for r in resources}
    # Only event hooks can close a loop here (the hard graph was acyclic).
    raise_problems([CycleError(c, via="event hooks") for c in find_cycles(needs)])
    return waves(resources, needs.__getitem__)


def _resources_needed(
    store: Store, edges: dict[str, list[str]], hooks: dict[str, list[Hook]], start: str
) -> set[str]:
    out: set[str] = set()
    seen = {start}
    todo = list(edges[start])
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        d = store.find(n)
        if isinstance(d, Resource):
            out.add(n)
            continue
        todo.extend(edges.get(n, ()))
        if isinstance(d, Event):
            todo.extend(h.id for h in hooks.get(n, ()))
    return out


def _ids(store: Store) -> list[str]:
    return [d.id for d in store]
