from __future__ import annotations

import asyncio
import importlib.metadata as md
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pluggy

import runner

from . import hookspecs
from ._diagnostics import Diagnostic

ENTRY_POINT_GROUP = "assemble"
hookimpl = pluggy.HookimplMarker("assemble")

Kind = Literal["resource", "middleware", "resource_middleware", "tag"]
KINDS: tuple[Kind, ...] = ("resource", "middleware", "resource_middleware", "tag")


@dataclass(frozen=True)
class Component:
    """A component type a manifest names with ``use:``.

    - ``resource``: ``init(config, **deps)`` (sync, async, or a generator) and an optional
      ``dispose(value)``.
    - ``middleware`` / ``resource_middleware``: ``run(call, config, **deps)``, or a
      ``factory(config) -> run`` called once per use (for per-instance state).
    - ``tag``: only a ``config_schema``.

    ``dependencies`` (a map, or ``config -> map``) are what the component needs injected.
    ``imports`` names config keys whose values are import paths (a string or a list of
    them): they are checked like ``run:`` paths, reported at their place, and arrive
    resolved (the objects, not the strings) in the config the component receives. A bare
    builtin name (``ConnectionError``) is accepted there too. As a mapping, each key has
    ``accepts(obj) -> problem or None`` that vets what the path resolved to (``"is not
    an exception class"``), reported at the path. ``check(config, report)``
    checks what a JSON Schema cannot (relations between keys); each
    ``report(message, at=(key, ...), hint=...)`` is an ``ASM603`` at that place in the
    config. ``plugin`` is filled in by the host.
    """

    name: str
    kind: Kind
    config_schema: Mapping[str, Any] | bool | None = None
    init: Callable[..., Any] | None = None
    dispose: Callable[..., Any] | None = None
    run: Callable[..., Any] | None = None
    factory: Callable[[Any], Callable[..., Any]] | None = None
    dependencies: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] = field(
        default_factory=dict
    )
    description: str = ""
    imports: Sequence[str] | Mapping[str, Callable[[Any], str | None]] = ()
    check: Callable[[Any, ConfigReport], None] | None = None
    plugin: str = ""

    def dependencies_for(self, config: Any) -> Mapping[str, Any]:
        deps = self.dependencies
        return deps(config) if callable(deps) else deps


class ConfigReport:
    """Passed to ``Component.check``: ``report(message, at=(key, ...), hint=)``."""

    def __init__(self, sink: Callable[[str, tuple[Any, ...], str], None]) -> None:
        self._sink = sink

    def __call__(self, message: str, *, at: Sequence[Any] = (), hint: str = "") -> None:
        self._sink(message, tuple(at), hint)


@dataclass(frozen=True)
class PluginInfo:
    """An installed plugin: entry-point name, distribution, version, what it offers."""

    name: str
    distribution: str
    version: str
    components: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()


class Report:
    """Passed to ``assemble_validate``: ``report(message, at=(...), code=, hint=)``."""

    def __init__(self, plugin: str, sink: Callable[[str, str, tuple[Any, ...], str, str], None]):
        self._plugin, self._sink = plugin, sink

    def __call__(
        self, message: str, *, at: Sequence[Any] = (), code: str = "", hint: str = ""
    ) -> None:
        self._sink(self._plugin, code or f"{self._plugin}/check", tuple(at), message, hint)


@dataclass
class Plugins:
    """The loaded plugins: component types by name, always-registered definitions, problems."""

    manager: pluggy.PluginManager
    infos: list[PluginInfo] = field(default_factory=list)
    components: dict[str, Component] = field(default_factory=dict)
    provided: dict[str, tuple[runner.Definition, str]] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)
    packages: set[str] = field(default_factory=set)

    def call(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call ``hook`` on each plugin in turn; a plugin that raises becomes a problem."""
        results = []
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            try:
                results.append((impl.plugin_name, impl.function(**kwargs)))
            except Exception as exc:
                self.problems.append(
                    Diagnostic(
                        "ASM604",
                        f"plugin {impl.plugin_name!r} failed in {hook}: "
                        f"{type(exc).__name__}: {exc}",
                        hint="this is a bug in the plugin; run with --debug for its traceback",
                        plugin=impl.plugin_name,
                    )
                )
                if debugging():
                    raise
        return results


def debugging() -> bool:
    """``--debug`` or ``ASSEMBLE_DEBUG`` (off: unset, empty, 0, false, f, no, n, off)."""
    value = os.environ.get("ASSEMBLE_DEBUG", "").strip().lower()
    return value not in ("", "0", "false", "f", "no", "n", "off")


def load_plugins(only: Sequence[str] | None = None, extra: Sequence[Any] = ()) -> Plugins:
    """Load the ``assemble`` entry points (only the named ones, if given) and ``extra`` objects.

    ``only`` defaults to ``$ASSEMBLE_PLUGINS`` (comma-separated) when set. Nothing
    fails silently: an import error or a clash is a diagnostic naming the plugin.
    """
    if only is None and os.environ.get("ASSEMBLE_PLUGINS"):
        only = [n.strip() for n in os.environ["ASSEMBLE_PLUGINS"].split(",") if n.strip()]
    pm = pluggy.PluginManager("assemble")
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm)
    seen: set[str] = set()
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if only is not None and ep.name not in only:
            continue
        seen.add(ep.name)
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        try:
            module = ep.load()
        except Exception as exc:
            plugins.problems.append(
                Diagnostic(
                    "ASM601",
                    f"plugin {ep.name!r} (distribution {dist} {version}) failed to import: "
                    f"{type(exc).__name__}: {exc}",
                    hint=f"fix or reinstall {dist}, or leave it out with --plugins",
                    plugin=ep.name,
                )
            )
            continue
        _register(plugins, module, ep.name, dist, version)
    for name in only or ():
        if name not in seen and not any(_name_of(x) == name for x in extra):
            plugins.problems.append(
                Diagnostic(
                    "ASM605",
                    f"no installed plugin is named {name!r}",
                    hint="`assemble plugins` lists the installed ones",
                )
            )
    for obj in extra:
        _register(plugins, obj, _name_of(obj), "(in-process)", "")
    _collect(plugins)
    return plugins


def _name_of(obj: Any) -> str:
    return str(getattr(obj, "__plugin_name__", getattr(obj, "__name__", type(obj).__name__)))


def _register(plugins: Plugins, obj: Any, name: str, dist: str, version: str) -> None:
    plugins.manager.register(obj, name=name)
    plugins.infos.append(PluginInfo(name, dist, version))
    module = getattr(obj, "__name__", "") or type(obj).__module__
    if module:
        plugins.packages.add(module.split(".")[0])


def _collect(plugins: Plugins) -> None:
    offered: dict[str, list[str]] = {}
    for plugin, items in plugins.call("assemble_components"):
        for item in items or ():
            if isinstance(item, Component):
                if item.kind not in KINDS:
                    plugins.problems.append(
                        Diagnostic(
                            "ASM606",
                            f"plugin {plugin!r} offers {item.name!r} of unknown kind {item.kind!r}",
                            hint=f"kind is one of {', '.join(KINDS)}",
                            plugin=plugin,
                        )
                    )
                    continue
                offered.setdefault(item.name, []).append(plugin)
                plugins.components.setdefault(item.name, replace(item, plugin=plugin))
            elif isinstance(item, runner.Definition):
                first = plugins.provided.setdefault(item.id, (item, plugin))[1]
                if first != plugin:
                    plugins.problems.append(
                        Diagnostic(
                            "ASM602",
                            f"id {item.id!r} is registered by two plugins: "
                            f"{first!r} and {plugin!r}",
                            hint="uninstall one of them, or load only one with --plugins",
                            plugin=plugin,
                        )
                    )
    for name, owners in offered.items():
        if len(owners) > 1:
            plugins.problems.append(
                Diagnostic(
                    "ASM602",
                    f"component type {name!r} is offered by two plugins: "
                    f"{owners[0]!r} and {owners[1]!r}",
                    hint="uninstall one of them, or load only one with --plugins",
                    plugin=owners[1],
                )
            )
    by_plugin: dict[str, list[str]] = {}
    for c in plugins.components.values():
        by_plugin.setdefault(c.plugin, []).append(c.name)
    provided: dict[str, list[str]] = {}
    for id, (_, plugin) in plugins.provided.items():
        provided.setdefault(plugin, []).append(id)
    plugins.infos = [
        replace(
            i,
            components=tuple(sorted(by_plugin.get(i.name, ()))),
            provides=tuple(sorted(provided.get(i.name, ()))),
        )
        for i in plugins.infos
    ]


def require_asyncio(error: type[runner.errors.RunnerError], what: str, because: str) -> None:
    """Raise ``error`` (the component's own error class, with its code) unless the app
    runs on asyncio: for a component whose library runs on asyncio only. Call it first in
    the component's init; ``because`` names the library (``"nats-py runs on asyncio
    only"``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise error(
            f"{what} needs the asyncio backend: {because}",
            hint="run the app on asyncio (the default: drop --backend trio)",
        ) from None
