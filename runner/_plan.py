from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
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
    Tag,
    Task,
    TaskMiddleware,
)
from ._graph import find_cycles, waves
from ._schema import Schema
from ._store import Store, raise_problems, suggest
from .errors import (
    CycleError,
    InvalidDefinitionError,
    MissingDependencyError,
    RunnerError,
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
    problems: list[RunnerError] = []
    edges: dict[str, list[str]] = {}
    for d in store:
        edges[d.id] = list(_dependency_ids(store, d, problems))
    task_layers = _layers(store, store.tasks.values(), TaskMiddleware, edges, problems)
    resource_layers = _layers(store, store.resources.values(), ResourceMiddleware, edges, problems)
    hooks = _hooks(store, problems)
    for r in store.resources.values():
        _check_config(r, r.config, problems)
    owners: list[Task | Resource] = [*store.tasks.values(), *store.resources.values()]
    for owner in owners:
        for use in owner.tags:
            if use.config is use.tag.config:  # a bare tag: with_() validated the others
                _check_config(use.tag, use.config, problems)
    for d in store:
        _check_signature(d, problems)
    raise_problems(problems)
    cycles = find_cycles(edges)
    raise_problems([CycleError(c) for c in cycles])
    return Plan(store, task_layers, resource_layers, _waves(store, edges, hooks), hooks)


def _dependency_ids(store: Store, d: Definition, problems: list[RunnerError]) -> Iterable[str]:
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
                    owner=d.id,
                )
            )
        else:
            yield ref.id


def _layers(
    store: Store,
    owners: Iterable[Task | Resource],
    kind: type[TaskMiddleware] | type[ResourceMiddleware],
    edges: dict[str, list[str]],
    problems: list[RunnerError],
) -> dict[str, list[Layer]]:
    """Each owner's middleware, outermost first: global ones, then its own list.

    Own lists are wired into ``edges`` first, so that a global middleware can skip
    everything it depends on, through its dependencies' own middleware too.
    """
    local: dict[str, list[Layer]] = {}
    for owner in owners:
        uses = [u for u in owner.middleware if _known(store, owner, u, kind, problems)]
        local[owner.id] = [_layer(store.get(u.id), u) for u in uses]
        edges[owner.id].extend(u.id for u in uses)
    everywhere = [m for m in store if isinstance(m, kind) and m.everywhere is not False]
    closures = {m.id: _reachable(edges, m.id) for m in everywhere}
    out: dict[str, list[Layer]] = {}
    for owner in owners:
        mine = {mw.id for mw, _ in local[owner.id]}
        layers: list[Layer] = [
            (m, m.config)
            for m in everywhere
            if m.id not in mine and owner.id not in closures[m.id] and _applies(m, owner)
        ]
        edges[owner.id].extend(m.id for m, _ in layers)
        out[owner.id] = layers + local[owner.id]
    checked: set[tuple[str, int]] = set()
    for layers in out.values():
        for mw, config in layers:
            if (mw.id, id(config)) not in checked:
                checked.add((mw.id, id(config)))
                _check_config(mw, config, problems)
    return out


def _layer(mw: Definition, use: MiddlewareUse) -> Layer:
    assert isinstance(mw, TaskMiddleware | ResourceMiddleware)
    return (mw, use.config if use.configured else mw.config)


def _applies(mw: TaskMiddleware | ResourceMiddleware, owner: Any) -> bool:
    rule = mw.everywhere
    return rule is True or (callable(rule) and bool(rule(owner)))


def _known(
    store: Store,
    owner: Definition,
    use: MiddlewareUse,
    kind: type[Definition],
    problems: list[RunnerError],
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
                owner=owner.id,
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


def _hooks(store: Store, problems: list[RunnerError]) -> dict[str, list[Hook]]:
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


def _check_signature(d: Definition, problems: list[RunnerError]) -> None:
    """The callable must accept what the runtime will pass: positionals, then deps by key."""
    attr, positional = _CALLS.get(type(d), ("", ()))
    fn = getattr(d, attr, None)
    if fn is None:
        return
    problem = signature_problem(fn, attr, positional, list(getattr(d, "dependencies", ())))
    if problem:
        problems.append(
            InvalidDefinitionError(f"{d.kind} {d.id!r}: {problem}", hint=SIGNATURE_HINT, owner=d.id)
        )


SIGNATURE_HINT = (
    "take each dependency as a keyword parameter named like its key (or **deps), "
    "and declare a dependency for each extra parameter"
)


def signature_problem(
    fn: Any, role: str, positional: Sequence[str], keys: Sequence[str]
) -> str | None:
    """Why ``fn(*positional, **keys)`` would not bind, or ``None`` when it would.

    ``role`` names the call in the message (``run``, ``init``...). Callables without
    an inspectable signature (some builtins) pass.
    """
    if _fits(fn, len(positional), list(keys)):
        return None
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return None
    try:
        sig.bind(*positional, **dict.fromkeys(keys))
    except TypeError as exc:
        call = ", ".join([*positional, *(f"{k}=..." for k in keys)])
        name = getattr(fn, "__name__", role)
        return f"{name}{sig} cannot be called as {role}({call}): {exc}"
    return None


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
    d: Resource | TaskMiddleware | ResourceMiddleware | Tag,
    config: Any,
    problems: list[RunnerError],
) -> None:
    schema = d.config_schema
    if isinstance(schema, Schema):
        try:
            schema.check(config, "config", d.id)
        except ValidationError as exc:
            problems.append(exc)


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
