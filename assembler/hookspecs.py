"""The hooks a plugin may implement (entry-point group ``assemble``).

A plugin is a module (or object) with functions marked ``@assembler.hookimpl`` whose
names are the hooks below. Every hook is optional. Built-in plugins use exactly
these hooks, loaded through the same entry-point group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import runner

    from ._manifest import Manifest
    from ._plugins import Component, Report

hookspec = pluggy.HookspecMarker("assemble")


@hookspec
def assemble_components() -> Sequence[Component | runner.Definition]:
    """Return the component types this plugin offers, and definitions it always registers.

    A :class:`~assembler.Component` is a type a manifest names with ``use:`` (a
    resource, a task or resource middleware, or a tag) with the JSON Schema of its
    config. A runner definition returned here (a ``logger`` resource, an ``auth``
    context...) is registered in every app; its id is taken, and a manifest id that
    shadows it is an error naming both owners.
    """
    raise NotImplementedError


@hookspec
def assemble_validate(manifest: Manifest, report: Report) -> None:
    """Check what no single component's schema can: relations across components.

    ``manifest`` is the loaded, interpolated manifest (``manifest.components(section)``
    lists components with their places). Call ``report(message, at=(section, id, ...),
    code=..., hint=...)`` for each problem; the diagnostic names this plugin. Runs only
    when the manifest has no structural errors.
    """
    raise NotImplementedError


@hookspec
def assemble_compile(manifest: Manifest, definitions: list[Any]) -> Sequence[Any] | None:
    """Add or replace runner definitions after the manifest is compiled.

    ``definitions`` are the app's definitions (the root resource excluded). Return
    definitions to add; one whose id already exists replaces it. Return ``None`` to
    change nothing.
    """
    raise NotImplementedError
