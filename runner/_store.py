from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from ._definitions import (
    AsyncContext,
    Definition,
    Event,
    Hook,
    Resource,
    ResourceMiddleware,
    Tag,
    Task,
    TaskMiddleware,
)
from .errors import (
    DefinitionError,
    DuplicateIdError,
    InvalidAppError,
    InvalidDefinitionError,
    NotRegisteredError,
    OverrideError,
    RunnerError,
)

D = TypeVar("D", bound=Definition)


class Tagged(NamedTuple):
    """A definition found by a tag query, with the config of its tag use."""

    definition: Any
    config: Any


class Store:
    """Every registered definition by id (the app's registration tree, overrides applied)."""

    def __init__(self, root: Resource, definitions: Mapping[str, Definition]) -> None:
        self.root = root
        self._all = dict(definitions)
        self._order = {id: i for i, id in enumerate(self._all)}

    @classmethod
    def build(cls, app: Resource, overrides: Sequence[Definition] = ()) -> Store:
        """Walk ``app``'s registration tree; raise on duplicate ids and bad overrides."""
        if not isinstance(app, Resource):
            raise InvalidDefinitionError(
                f"the app must be a Resource, got {app!r}",
                hint='wrap your definitions: runner.Resource("app", register=[...])',
            )
        found: dict[str, Definition] = {}
        problems: list[DefinitionError] = []
        stack: list[Definition] = [app]
        while stack:
            d = stack.pop()
            other = found.get(d.id)
            if other is not None:
                if other is not d:
                    problems.append(DuplicateIdError(d.id, (other.kind, d.kind)))
                continue
            found[d.id] = d
            if isinstance(d, Resource):
                stack.extend(reversed(d.register))
        replaced = set()
        for o in overrides:
            target = found.get(o.id)
            if target is None:
                problems.append(
                    OverrideError(
                        f"override {o.id!r} names no registered definition",
                        hint=_suggest(o.id, found) or "overrides replace registered ids only",
                    )
                )
            elif type(target) is not type(o):
                problems.append(
                    OverrideError(
                        f"override {o.id!r} is a {o.kind} but replaces a {target.kind}",
                        hint="an override must be of the same kind as what it replaces",
                    )
                )
            elif o.id in replaced:
                problems.append(
                    OverrideError(
                        f"two overrides replace {o.id!r}", hint="keep one override per id"
                    )
                )
            else:
                replaced.add(o.id)
                found[o.id] = o
        raise_problems(problems)
        root = found[app.id]
        assert isinstance(root, Resource)
        return cls(root, found)

    def __contains__(self, id: object) -> bool:
        return id in self._all

    def __iter__(self) -> Iterator[Definition]:
        return iter(self._all.values())

    def __len__(self) -> int:
        return len(self._all)

    def get(self, id: str) -> Definition:
        """The definition registered under ``id``."""
        try:
            return self._all[id]
        except KeyError:
            raise NotRegisteredError("definition", id, suggest(id, self._all)) from None

    def find(self, id: str) -> Definition | None:
        """The definition registered under ``id``, or ``None``."""
        return self._all.get(id)

    def registration_index(self, id: str) -> int:
        """Position of ``id`` in registration order (used to order hooks)."""
        return self._order[id]

    def _of(self, kind: type[D]) -> Mapping[str, D]:
        return MappingProxyType({k: v for k, v in self._all.items() if isinstance(v, kind)})

    @cached_property
    def tasks(self) -> Mapping[str, Task]:
        return self._of(Task)

    @cached_property
    def resources(self) -> Mapping[str, Resource]:
        return self._of(Resource)

    @cached_property
    def events(self) -> Mapping[str, Event]:
        return self._of(Event)

    @cached_property
    def hooks(self) -> Mapping[str, Hook]:
        return self._of(Hook)

    @cached_property
    def task_middleware(self) -> Mapping[str, TaskMiddleware]:
        return self._of(TaskMiddleware)

    @cached_property
    def resource_middleware(self) -> Mapping[str, ResourceMiddleware]:
        return self._of(ResourceMiddleware)

    @cached_property
    def tags(self) -> Mapping[str, Tag]:
        return self._of(Tag)

    @cached_property
    def contexts(self) -> Mapping[str, AsyncContext]:
        return self._of(AsyncContext)

    def tasks_with_tag(self, tag: Tag | str) -> list[Tagged]:
        """Tasks that carry ``tag``, each with the config of its use, in registration order."""
        return self._with_tag(self.tasks.values(), tag)

    def resources_with_tag(self, tag: Tag | str) -> list[Tagged]:
        """Resources that carry ``tag``, each with the config of its use."""
        return self._with_tag(self.resources.values(), tag)

    @staticmethod
    def _with_tag(defs: Iterable[Task | Resource], tag: Tag | str) -> list[Tagged]:
        tag_id = tag if isinstance(tag, str) else tag.id
        out = []
        for d in defs:
            for use in d.tags:
                if use.tag.id == tag_id:
                    out.append(Tagged(d, use.config))
                    break
        return out


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest id to ``word`` among ``choices``, if one is close enough."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def _suggest(word: str, choices: Iterable[str]) -> str:
    s = suggest(word, choices)
    return f"did you mean {s!r}?" if s else ""


def raise_problems(problems: Sequence[RunnerError]) -> None:
    """Raise the one problem, or all of them in an :class:`InvalidAppError`."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidAppError(
            f"the app has {len(problems)} problems",
            problems,
            hint="fix each one; they are grouped by the check that found them",
        )
