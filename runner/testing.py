"""Helpers to run an app, or a few definitions, in tests.

``async with runner.testing.run_test(task, db, overrides=[stub_resource(db, fake)]) as rt:``
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ._definitions import Definition, Resource, Task
from ._runtime import Runtime, run

__all__ = ["replace", "run_test", "stub_resource", "stub_task"]

D = TypeVar("D", bound=Definition)


@asynccontextmanager
async def run_test(
    *definitions: Definition,
    overrides: list[Definition] | tuple[Definition, ...] = (),
    drain_timeout: float | None = 5.0,
) -> AsyncIterator[Runtime]:
    """Run one app resource, or loose definitions under a generated root, with overrides."""
    if len(definitions) == 1 and isinstance(definitions[0], Resource):
        app = definitions[0]
    else:
        app = Resource("runner.testing.app", register=definitions)
    async with run(app, overrides=overrides, drain_timeout=drain_timeout) as rt:
        yield rt


def replace(definition: D, **changes: Any) -> D:
    """A copy of ``definition`` with ``changes`` (same id): pass it as an override."""
    return dataclasses.replace(definition, **changes)


def stub_resource(resource: Resource | str, value: Any) -> Resource:
    """An override whose value is ``value`` (no init, no dispose, no dependencies)."""
    rid = resource if isinstance(resource, str) else resource.id
    return Resource(rid, init=lambda config: value)


def stub_task(task: Task | str, run: Callable[..., Any]) -> Task:
    """An override of ``task`` that calls ``run(input)``.

    Given the definition, the stub keeps its tags and schemas (so tag queries still
    find it) and drops its dependencies and middleware.
    """
    if isinstance(task, str):
        return Task(task, run=run)
    return dataclasses.replace(task, run=run, dependencies={}, middleware=(), remote=False)
