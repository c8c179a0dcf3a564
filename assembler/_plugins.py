from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.metadata as md
import inspect
import os
import types
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pluggy

import runner

from . import hookspecs
from ._config import config_schema
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
    config: type | None = None
    """The config's class (see :mod:`assembler._config`): ``config_schema`` comes from it,
    and ``init``/``run``/``factory`` receive its typed object instead of the mapping."""

    def __post_init__(self) -> None:
        if self.config is not None and self.config_schema is None:
            object.__setattr__(self, "config_schema", config_schema(self.config))

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

    def require_library(
        self,
        what: str,
        modules: str | Sequence[str],
        *,
        extra: str,
        library: str = "",
        at: Sequence[Any] = (),
    ) -> bool:
        """Report that ``what`` needs a library that is not installed (see
        :func:`missing_library`); ``True`` when it is installed."""
        missing = missing_library(what, modules, extra=extra, library=library)
        if missing is not None:
            self(missing.message, at=at, hint=missing.hint)
        return missing is None


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

    def bound(self, plugin: str) -> Report:
        """The same report, its diagnostics naming ``plugin``."""
        return Report(plugin, self._sink)


@dataclass
class Plugins:
    """The loaded plugins: component types by name, always-registered definitions, problems."""

    manager: pluggy.PluginManager
    infos: list[PluginInfo] = field(default_factory=list)
    components: dict[str, Component] = field(default_factory=dict)
    provided: dict[str, tuple[runner.Definition, str]] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)
    packages: set[str] = field(default_factory=set)

    _results: list[tuple[str, Any]] | None = field(default=None, repr=False)
    _on_failure: Callable[[str, str, Exception], None] | None = field(default=None, repr=False)

    def call(
        self,
        hook: str,
        *,
        on_failure: Callable[[str, str, Exception], None] | None = None,
        **kwargs: Any,
    ) -> list[tuple[str, Any]]:
        """Call ``hook`` through pluggy, in its order: ``wrapper=True`` (and old-style
        ``hookwrapper``) implementations around the others, ``tryfirst`` ones first,
        then the rest from the last registered to the first, ``trylast`` ones last.

        Each implementation runs guarded (see :func:`_guarded_plugin`): one that raises
        is reported as its own problem (ASM604, or ``on_failure(plugin, hook, exc)``)
        and the others still run. Returns ``(plugin, result)`` for each result that is
        not ``None``, in call order; a wrapper may replace the results (pluggy's
        ``wrapper=True`` semantics), and a result it adds is attributed to no plugin
        (``""``)."""
        self._results, self._on_failure = [], on_failure
        try:
            outcome = getattr(self.manager.hook, hook)(**kwargs)
            recorded = self._results
        finally:
            self._results, self._on_failure = None, None
        if [r for _, r in recorded] == outcome and all(
            a is b for (_, a), b in zip(recorded, outcome, strict=True)
        ):
            return recorded
        names = {id(result): plugin for plugin, result in recorded}
        return [(names.get(id(result), ""), result) for result in outcome or ()]

    def _record(self, plugin: str, result: Any) -> None:
        if self._results is not None and result is not None:
            self._results.append((plugin, result))

    def _failed(self, plugin: str, hook: str, exc: Exception) -> None:
        if self._on_failure is not None:
            self._on_failure(plugin, hook, exc)
        else:
            self.problems.append(
                Diagnostic(
                    "ASM604",
                    f"plugin {plugin!r} failed in {hook}: {type(exc).__name__}: {exc}",
                    hint="this is a bug in the plugin; run with --debug for its traceback",
                    plugin=plugin,
                )
            )
        if debugging():
            raise exc


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
    plugins.manager.register(_guarded_plugin(plugins, obj, name), name=name)
    plugins.infos.append(PluginInfo(name, dist, version))
    module = getattr(obj, "__name__", "") or type(obj).__module__
    if module:
        plugins.packages.add(module.split(".")[0])


def _guarded_plugin(plugins: Plugins, obj: Any, name: str) -> object:
    """What is registered with pluggy for the plugin ``obj``: its hook implementations
    (same names, markers and signatures), each guarded so that an exception it raises is
    reported against ``name`` and the hook call goes on (pluggy would stop at the first
    one, and every later plugin would go unheard). A ``report`` argument is bound to
    ``name``, so what each plugin reports names it."""
    proxy = types.SimpleNamespace(__name__=getattr(obj, "__name__", name))
    for attr in dir(obj):
        function = getattr(obj, attr, None)
        opts = getattr(function, f"{ENTRY_POINT_GROUP}_impl", None)
        if not callable(function) or not isinstance(opts, dict):
            continue
        argnames = _argnames(function)
        if opts.get("wrapper") or opts.get("hookwrapper"):
            guarded = _guarded_wrapper(plugins, name, attr, function, argnames)
        else:
            guarded = _guarded_impl(plugins, name, attr, function, argnames)
        setattr(proxy, attr, guarded)
    return proxy


def _argnames(function: Callable[..., Any]) -> list[str]:
    """The arguments pluggy passes to ``function``: those without a default, in order."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.kind in kinds and p.default is inspect.Parameter.empty
    ]


def _arguments(name: str, argnames: Sequence[str], args: Sequence[Any]) -> dict[str, Any]:
    kwargs = dict(zip(argnames, args, strict=True))
    report = kwargs.get("report")
    if isinstance(report, Report):
        kwargs["report"] = report.bound(name)
    return kwargs


def _guarded_impl(
    plugins: Plugins, name: str, hook: str, function: Callable[..., Any], argnames: Sequence[str]
) -> Callable[..., Any]:
    @functools.wraps(function)
    def guarded(*args: Any) -> Any:
        try:
            result = function(**_arguments(name, argnames, args))
        except Exception as exc:
            plugins._failed(name, hook, exc)
            return None
        plugins._record(name, result)
        return result

    return guarded


def _guarded_wrapper(
    plugins: Plugins, name: str, hook: str, function: Callable[..., Any], argnames: Sequence[str]
) -> Callable[..., Any]:
    """A wrapper (``wrapper=True`` or ``hookwrapper=True``) whose own failure, before or
    after its ``yield``, is reported and leaves the result as the others made it."""

    @functools.wraps(function)
    def guarded(*args: Any) -> Generator[Any, Any, Any]:
        teardown = function(**_arguments(name, argnames, args))
        try:
            next(teardown)
        except StopIteration:
            plugins._failed(name, hook, RuntimeError("the hook wrapper did not yield"))
            return (yield)
        except Exception as exc:
            plugins._failed(name, hook, exc)
            return (yield)
        result = yield
        try:
            teardown.send(result)
        except StopIteration as stop:
            return stop.value
        except Exception as exc:
            plugins._failed(name, hook, exc)
            return result
        teardown.close()
        plugins._failed(name, hook, RuntimeError("the hook wrapper yielded twice"))
        return result

    return guarded


def _collect(plugins: Plugins) -> None:
    offered: dict[str, list[str]] = {}
    # component types are attributed in registration order (the first registered owns a
    # clash's name), whatever order the hooks ran in
    rank = {info.name: n for n, info in enumerate(plugins.infos)}
    answers = sorted(plugins.call("assemble_components"), key=lambda a: rank.get(a[0], len(rank)))
    for plugin, items in answers:
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


class MissingLibrary(runner.errors.RunnerError):
    """A component's library is not installed (see :func:`require_library`)."""

    code = "assemble.missing_library"


def missing_library(
    what: str, modules: str | Sequence[str], *, extra: str, library: str = ""
) -> MissingLibrary | None:
    """The error to give if one of ``modules`` cannot be imported, else ``None``.

    ``what`` names the component (``"redis.client"``), ``library`` the library as users
    know it (default: the modules' names), ``extra`` the assemble extra that installs
    it: ``redis.client needs the `redis` library, which is not installed``, hint
    ``install assemble[redis] (pip install "assemble[redis]")``."""
    names = [modules] if isinstance(modules, str) else list(modules)
    for module in names:
        parts = module.split(".")
        try:  # each package on the way, as an import statement does
            for end in range(1, len(parts) + 1):
                importlib.import_module(".".join(parts[:end]))
        except ImportError:
            shown = library or " and ".join(f"`{n}`" for n in names)
            return MissingLibrary(
                f"{what} needs {shown}, which is not installed",
                hint=f'install assemble[{extra}] (pip install "assemble[{extra}]")',
            )
    return None


def require_library(
    what: str,
    modules: str | Sequence[str],
    *,
    extra: str,
    library: str = "",
    error: type[runner.errors.RunnerError] = MissingLibrary,
) -> None:
    """Raise ``error`` (the component's own class, with its code; by default
    :class:`MissingLibrary`) if one of ``modules`` is not installed: the first lines of
    a component's init. The message and hint are :func:`missing_library`'s."""
    missing = missing_library(what, modules, extra=extra, library=library)
    if missing is not None:
        raise error(missing.message, hint=missing.hint) from None
