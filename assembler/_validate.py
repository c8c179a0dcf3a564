"""Validation: every problem of a manifest in one run, each with its place.

Order: load (guard, includes) -> interpolate -> structure (JSON Schema) -> component
types and plugin configs -> ids and references -> import paths and signatures ->
compile and the runtime's own checks (cycles) -> plugins' cross-component checks.
A component with a structural error is skipped by the later stages, so one broken
component never hides the problems of the others.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path as FsPath
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match

import runner

from ._diagnostics import Diagnostic, sort_key
from ._imports import Importer, ImportFailure
from ._manifest import KIND_OF_SECTION, REDACTED, SECTIONS, Manifest, near, pointer, read
from ._plugins import Component, ConfigReport, Plugins, Report, debugging
from ._yaml import Path

# What a manifest section's `use:` may name, by component kind.
USE_KINDS = {
    "resources": ("resource",),
    "middleware": ("middleware", "resource_middleware"),
}
ROLE = {  # section -> (callable key, positional parameters)
    "resources": ("init", ("config",)),
    "middleware": ("run", ("call", "config")),
    "tasks": ("run", ("input",)),
    "hooks": ("run", ("event",)),
}


@cache
def manifest_schema() -> dict[str, Any]:
    """The core manifest schema (schemas/manifest.v1.schema.json)."""
    return json.loads(_schema_file("manifest.v1.schema.json").read_text())  # type: ignore[no-any-return]


def _schema_file(name: str) -> FsPath:
    here = FsPath(__file__).resolve().parent
    for folder in (here / "schemas", here.parent / "schemas"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(name)  # pragma: no cover  # a broken install


@dataclass
class Checked:
    """The outcome of :func:`check`: the manifest (if readable) and every diagnostic."""

    manifest: Manifest | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    imports: dict[str, Any] = field(default_factory=dict)
    broken: set[Path] = field(default_factory=set)
    app: runner.Resource | None = None
    """The compiled app, when the manifest has no errors."""

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def check(
    path: str,
    plugins: Plugins,
    env: Mapping[str, str] | None = None,
    overlays: Sequence[str] = (),
    *,
    roots: Sequence[str] = (),
    imports: bool = True,
) -> Checked:
    """Validate the manifest at ``path`` with ``overlays`` laid over it (in order); the
    result lists every problem found.

    ``roots`` are folders besides the manifest's own that includes may come from
    (``--root``). With ``imports=False`` (``--no-import``) no module the manifest
    names is imported: import paths are checked as text against the allow-list, and
    what needs the imported objects (signatures, compiling, cycles) is not checked;
    :attr:`Checked.app` stays ``None``.
    """
    diags: list[Diagnostic] = list(plugins.problems)
    manifest = read(path, diags.append, env, overlays, roots)
    result = Checked(manifest, diags)
    if manifest is None:
        return result
    v = _Validator(manifest, plugins, result, load=imports)
    v.structure()
    v.components()
    v.ids()
    v.references()
    v.imports()
    if result.ok:
        if imports:
            v.compiled()
        v.plugin_checks()
    if not result.ok:
        result.app = None
    secrets = runner.SecretValues(manifest.secret_values)
    result.diagnostics = sorted(_unique(_scrubbed(diags, secrets)), key=sort_key)
    return result


def _scrubbed(diags: list[Diagnostic], secrets: runner.SecretValues) -> Iterator[Diagnostic]:
    """Secret values never appear in a diagnostic (DESIGN §8, §12): each is masked as a
    whole token, never inside a word, so the rest of the message stays readable."""
    for d in diags:
        message, hint = secrets.sub(d.message, REDACTED), secrets.sub(d.hint, REDACTED)
        yield (
            d if (message, hint) == (d.message, d.hint) else replace(d, message=message, hint=hint)
        )


def _unique(diags: Iterable[Diagnostic]) -> Iterator[Diagnostic]:
    seen = set()
    for d in diags:
        key = (d.code, d.file, d.line, d.col, d.message)
        if key not in seen:
            seen.add(key)
            yield d


class _Validator:
    def __init__(
        self, manifest: Manifest, plugins: Plugins, result: Checked, *, load: bool = True
    ) -> None:
        self.m, self.plugins, self.result = manifest, plugins, result
        self.load = load  # import the modules import paths name (not with --no-import)
        self.kinds: dict[str, tuple[str, Path]] = {}  # id -> (kind, path)
        self.uses: list[tuple[Component, dict[str, Any], Path]] = []  # with config imports

    # -- reporting --------------------------------------------------------------

    def report(
        self,
        code: str,
        path: Path,
        message: str,
        hint: str = "",
        *,
        key: bool = False,
        plugin: str = "core",
    ) -> None:
        component = len(path) == 2 and path[0] in SECTIONS  # point at the id itself
        mark = self.m.place(path, key=key or component)
        self.result.diagnostics.append(
            Diagnostic(
                code, message, mark.file, mark.line, mark.col, pointer(path), hint, plugin=plugin
            )
        )

    def mark_broken(self, path: Path) -> None:
        """Later stages skip the component (or top-level key) a structural error is in."""
        if len(path) >= 2 and path[0] in SECTIONS:
            self.result.broken.add(path[:2])
        elif path:
            self.result.broken.add(path[:1])

    def broken(self, path: Path) -> bool:
        return any(path[: len(b)] == b for b in self.result.broken)

    def unresolved_in(self, path: Path) -> bool:
        """Whether a ``${...}`` that failed lies at or inside ``path``."""
        return self.m.failed_in(path)

    def each(self, section: str) -> Iterator[tuple[str, dict[str, Any], Path]]:
        for id, body, path in self.m.components(section):
            if not self.broken(path):
                yield id, body, path

    # -- structure --------------------------------------------------------------

    def structure(self) -> None:
        validator = Draft202012Validator(manifest_schema())
        for err in validator.iter_errors(self.m.data):
            self.schema_error(err, (), manifest_schema())

    def schema_error(
        self, err: SchemaError, base: Path, schema: Any, plugin: str = "core", owner: str = ""
    ) -> None:
        """Turn one jsonschema error into a diagnostic at its place, with a useful message."""
        if self.m.failed((*base, *err.absolute_path)):
            self.mark_broken((*base, *err.absolute_path))
            return  # the failed ${...} was reported already (also for a oneOf: a duration)
        if (
            err.validator in ("oneOf", "anyOf")
            and err.absolute_path
            and err.absolute_path[-1] == "on"
        ):
            return self._one_of(err, base, plugin)
        if err.validator in ("oneOf", "anyOf") and err.context:
            # The alternatives whose type matched say what is wrong inside the value.
            fitting = [e for e in err.context if e.validator not in ("type", "const")]
            if fitting:
                return self.schema_error(best_match(fitting), base, schema, plugin, owner)
            return self._one_of(err, base, plugin)
        path: Path = (*base, *err.absolute_path)
        self.mark_broken(path)
        if self.m.failed(path):
            return  # the failed ${...} was reported already
        what = owner or _owner(path)
        if owner and plugin != "core":
            what += f" (plugin {plugin})"
        code = "ASM603" if plugin != "core" else "ASM104"
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = list(err.schema.get("properties", {})) if isinstance(err.schema, dict) else []
            for extra in sorted(set(err.instance) - set(allowed)):
                guess = near(extra, allowed)
                hint = (
                    f"did you mean {guess!r}?" if guess else f"allowed here: {', '.join(allowed)}"
                )
                self.report(
                    "ASM101" if plugin == "core" else code,
                    (*path, extra),
                    f"unknown key {extra!r} {what}",
                    hint,
                    key=True,
                    plugin=plugin,
                )
            return
        if err.validator == "required":
            required: list[str] = list(err.validator_value)  # type: ignore[arg-type]
            present = err.instance if isinstance(err.instance, dict) else {}
            missing = next((n for n in required if n not in present), "?")
            self.report(
                "ASM103" if plugin == "core" else code,
                path,
                f"missing required key {missing!r} {what}",
                f"add `{missing}:`",
                key=True,
                plugin=plugin,
            )
            return
        if err.validator == "const" and path == ("assemble",):
            self.report(
                "ASM105",
                path,
                f"unsupported manifest version {err.instance!r}",
                "this assemble reads `assemble: 1`",
            )
            return
        value = REDACTED if self.m.is_secret(path) else _short(err.instance)
        if err.validator == "type":
            types = err.validator_value
            expected = " or ".join(types) if isinstance(types, list) else str(types)
            self.report(
                "ASM102" if plugin == "core" else code,
                path,
                f"expected {_article(expected)} {what}, got {_json_type(err.instance)}"
                + (f" ({value})" if value != REDACTED else ""),
                _type_hint(path, expected)
                if path not in self.m.interpolated
                else "this value is a whole ${...}: it takes the type of what it resolves to; "
                "put text around the reference to make it text",
                plugin=plugin,
            )
            return
        if err.validator == "pattern" and path[-1:] in (("init",), ("run",), ("dispose",)):
            self.report(
                "ASM401",
                path,
                f"{value} is not an import path",
                "write `package.module:attribute`, e.g. `my_app.tasks:create_user`",
            )
            return
        if "propertyNames" in err.schema_path or path == ("id",):
            name = err.instance if isinstance(err.instance, str) else value
            is_key = "propertyNames" in err.schema_path
            at = (*path, name) if is_key else path
            keyword = "dependencies" in path[-1:] and "propertyNames" in err.schema_path
            what = "a dependency key" if keyword else "an id"
            self.report(
                "ASM104",
                at,
                f"{name!r} is not a valid {what.split(' ', 1)[1]}",
                "a dependency key is a Python identifier (letters, digits, `_`)"
                if keyword
                else "ids use letters, digits, `_`, `-` and `.`, and start with a letter or `_`",
                key=is_key,
                plugin=plugin,
            )
            return
        message = err.message if not self.m.is_secret(path) else _redacted_message(err)
        if err.validator == "enum":
            choices: list[Any] = list(err.validator_value)  # type: ignore[arg-type]
            hint = "one of: " + ", ".join(json.dumps(v) for v in choices)
        elif plugin != "core":
            component = owner.split(" of ")[-1] or "the component"
            hint = f"see the config schema of {component} (`assemble schema`)"
        else:
            hint = "see the manifest reference: docs/manifest.md"
        self.report(code, path, f"{message} {what}".strip(), hint, plugin=plugin)

    def _one_of(self, err: SchemaError, base: Path, plugin: str) -> None:
        path: Path = (*base, *err.absolute_path)
        self.mark_broken(path)
        if "dependencies" in path:
            msg, hint = "a dependency is an id or {ref: id, optional: true}", "e.g. `db: db`"
        elif "middleware" in path:
            msg = "a middleware entry is an id or {use: TYPE, config: {...}}"
            hint = "e.g. `middleware: [jwt, {use: cache.memory, config: {ttl: 60s}}]`"
        elif path[-1:] == ("on",):
            msg, hint = '`on` is an event id, a list of ids, or "*"', "e.g. `on: user_registered`"
        else:
            msg, hint = err.message, "see the manifest reference: docs/manifest.md"
        value = REDACTED if self.m.is_secret(path) else _short(err.instance)
        self.report("ASM102", path, f"{msg}, got {value}", hint, plugin=plugin)

    # -- component types and their configs -------------------------------------

    def components(self) -> None:
        for section in SECTIONS:
            for id, body, path in self.each(section):
                self.component(section, id, body, path)
                for i, entry in enumerate(body.get("middleware") or ()):
                    if isinstance(entry, dict) and "use" in entry:
                        self.use(
                            section if section == "resources" else "tasks",
                            entry,
                            (*path, "middleware", i),
                            inline=True,
                        )

    def component(self, section: str, id: str, body: dict[str, Any], path: Path) -> None:
        kind = KIND_OF_SECTION[section]
        how = [k for k in ("use", "init", "run", "remote") if k in body]
        if section in ("resources", "middleware", "tasks"):
            if len(how) > 1:
                self.report(
                    "ASM106",
                    (*path, how[1]),
                    f"{kind} {id!r} sets both `{how[0]}` and `{how[1]}`",
                    "keep exactly one",
                    key=True,
                )
                self.result.broken.add(path)
                return
            if not how and section != "resources":
                need = "`use` or `run`" if section == "middleware" else "`run` (or `remote: true`)"
                self.report(
                    "ASM103",
                    path,
                    f"{kind} {id!r} needs {need}",
                    "point `run` at a function: `my_app.module:function`",
                    key=True,
                )
                self.result.broken.add(path)
                return
        if section == "resources" and "dispose" in body and "init" not in body:
            self.report(
                "ASM106",
                (*path, "dispose"),
                f"resource {id!r} has a `dispose` but no `init`",
                "dispose(value) receives what init returned: add `init`",
                key=True,
            )
            self.result.broken.add(path)
            return
        if "use" in body:
            self.use(section, body, path, inline=False)
        for key in ("config_schema", "input_schema", "result_schema", "payload_schema"):
            if key in body:
                self.metaschema((*path, key), body[key])
        if "config_schema" in body and "config" in body and self.ok_schema(body["config_schema"]):
            self.config(
                runner.Schema(body["config_schema"]),
                body["config"],
                (*path, "config"),
                f"{kind} {id!r}",
            )

    def use(self, section: str, body: dict[str, Any], path: Path, *, inline: bool) -> None:
        name = body["use"]
        comp = self.plugins.components.get(name)
        if comp is None:
            guess = near(name, list(self.plugins.components))
            hint = (
                f"did you mean {guess!r}?"
                if guess
                else (
                    "install the plugin that offers it (`assemble plugins` lists what is installed)"
                )
            )
            self.report("ASM201", (*path, "use"), f"unknown component type {name!r}", hint)
            self.result.broken.add(path[:2])
            return
        if inline:  # an entry of a `middleware:` list
            allowed: tuple[str, ...] = (
                ("resource_middleware",) if section == "resources" else ("middleware",)
            )
        else:
            allowed = USE_KINDS.get(section, ())
        if comp.kind not in allowed:
            self.report(
                "ASM202",
                (*path, "use"),
                f"{name!r} is a {comp.kind.replace('_', ' ')} "
                f"type (plugin {comp.plugin}), not usable here",
                f"declare it under `{_section_for(comp.kind)}:`",
            )
            self.result.broken.add(path[:2])
            return
        before = len(self.result.diagnostics)
        if comp.config_schema is not None:
            self.config(
                _component_schema(comp),
                body.get("config", {}),
                (*path, "config"),
                f"{comp.name!r}",
                plugin=comp.plugin,
            )
        if len(self.result.diagnostics) > before or self.unresolved_in((*path, "config")):
            return  # a value in this config whose ${...} failed (reported) is not checked
        if comp.check is not None:
            self.config_check(comp, body.get("config", {}), (*path, "config"))
        if comp.imports and len(self.result.diagnostics) == before:
            self.uses.append((comp, body, path))

    def config_check(self, comp: Component, config: Any, path: Path) -> None:
        def sink(message: str, at: tuple[Any, ...], hint: str) -> None:
            self.report(
                "ASM603",
                (*path, *at),
                f"config of {comp.name!r} (plugin {comp.plugin}): {message}",
                hint or f"see the config schema of {comp.name!r} (`assemble schema`)",
                plugin=comp.plugin,
            )

        assert comp.check is not None
        try:
            comp.check(config, ConfigReport(sink))
        except Exception as exc:
            if debugging():
                raise
            self.report(
                "ASM604",
                path,
                f"plugin {comp.plugin!r} failed checking the config of {comp.name!r}: "
                f"{type(exc).__name__}: {exc}",
                "this is a bug in the plugin; run with --debug for its traceback",
                plugin=comp.plugin,
            )

    def config(
        self, schema: runner.Schema, config: Any, path: Path, owner: str, plugin: str = "core"
    ) -> None:
        validator = schema._validator
        for err in validator.iter_errors(config):
            self.schema_error(err, path, schema.schema, plugin, f"in the config of {owner}")

    def ok_schema(self, schema: Any) -> bool:
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError:
            return False
        return True

    def metaschema(self, path: Path, schema: Any) -> None:
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
            err = best_match(meta.iter_errors(schema)) or exc
            where = (*path, *err.absolute_path)
            self.report(
                "ASM107",
                where,
                f"not a valid JSON Schema: {err.message}",
                "schemas follow JSON Schema draft 2020-12",
            )
            self.result.broken.add(path[:2])
            return
        dangling = runner.Schema.dangling_refs(schema)
        for at, ref in dangling:
            self.report(
                "ASM107",
                (*path, *at),
                f"$ref {ref!r} points nowhere",
                "point $ref at a definition in the same schema, e.g. #/$defs/name",
            )
        if dangling:
            self.result.broken.add(path[:2])

    # -- ids and references -----------------------------------------------------

    def ids(self) -> None:
        root = self.m.data.get("id")
        if isinstance(root, str):
            self.kinds[root] = ("app", ("id",))
        every = [(id, path) for section in SECTIONS for id, _, path in self.m.components(section)]
        every.sort(key=lambda item: self._order(item[1]))
        for id, path in every:
            section = str(path[0])
            if id in self.kinds:
                other_kind, other = self.kinds[id]
                first = self.m.place(other, key=True)
                self.report(
                    "ASM204",
                    path,
                    f"id {id!r} names a {KIND_OF_SECTION[section]} "
                    f"and {'an' if other_kind[0] in 'aeiou' else 'a'} {other_kind} "
                    f"(first at {first.file}:{first.line})",
                    "ids are global: rename one of them",
                    key=True,
                )
                continue
            self.kinds[id] = (self._kind(section, id), path)
            if id in self.plugins.provided and not self.configures_provided(id, path):
                _, plugin = self.plugins.provided[id]
                self.report(
                    "ASM205",
                    path,
                    f"id {id!r} is taken by plugin {plugin!r}",
                    f"rename it; {plugin} registers {id!r} in every app",
                    key=True,
                )
        for id, (definition, plugin) in self.plugins.provided.items():
            self.kinds.setdefault(id, (_runner_kind(definition), ("plugin", plugin)))

    def configures_provided(self, id: str, path: Path) -> bool:
        """``logger: {use: logger, config: ...}`` configures the plugin's own ``logger``."""
        body = self.m.data.get(str(path[0]), {}).get(id)
        comp = self.plugins.components.get(id)
        return (
            isinstance(body, dict)
            and body.get("use") == id
            and comp is not None
            and comp.plugin == self.plugins.provided[id][1]
        )

    def _kind(self, section: str, id: str) -> str:
        if section != "middleware":
            return KIND_OF_SECTION[section]
        body = self.m.data["middleware"][id]
        if not isinstance(body, dict):
            return "middleware"
        use = body.get("use")
        comp = self.plugins.components.get(use) if isinstance(use, str) else None
        wraps_resources = body.get("for") == "resources" or (
            comp is not None and comp.kind == "resource_middleware"
        )
        return "resource middleware" if wraps_resources else "middleware"

    def _order(self, path: Path) -> tuple[int, str, int, int]:
        mark = self.m.place(path, key=True)
        return (mark.file != self.m.file, mark.file, mark.line, mark.col)

    def references(self) -> None:
        for section in SECTIONS:
            for _, body, path in self.each(section):
                self.dependencies(body, path)
                for i, entry in enumerate(body.get("middleware") or ()):
                    if isinstance(entry, str):
                        want = "resource middleware" if section == "resources" else "middleware"
                        self.ref(entry, (*path, "middleware", i), (want,), want)
                for tag in body.get("tags") or {}:
                    if tag not in self.plugin_tags() and self.kinds.get(tag, ("",))[0] != "tag":
                        self.unknown(
                            tag,
                            (*path, "tags", tag),
                            "tag",
                            key=True,
                            choices=[*self.plugin_tags(), *self.ids_of("tag")],
                        )
                    elif tag in self.plugin_tags():
                        comp = self.plugins.components[tag]
                        if comp.config_schema is not None:
                            self.config(
                                _component_schema(comp),
                                body["tags"][tag],
                                (*path, "tags", tag),
                                repr(tag),
                                plugin=comp.plugin,
                            )
                    else:
                        self.user_tag_config(tag, body["tags"][tag], (*path, "tags", tag))
                if section == "hooks":
                    on = body.get("on")
                    targets = [on] if isinstance(on, str) else on if isinstance(on, list) else []
                    for i, event in enumerate(targets):
                        at = (*path, "on") if isinstance(on, str) else (*path, "on", i)
                        if event != "*":
                            self.ref(event, at, ("event",), "event")

    def plugin_tags(self) -> list[str]:
        return [n for n, c in self.plugins.components.items() if c.kind == "tag"]

    def ids_of(self, kind: str) -> list[str]:
        return [i for i, (k, _) in self.kinds.items() if k == kind]

    def user_tag_config(self, tag: str, config: Any, path: Path) -> None:
        body = (self.m.data.get("tags") or {}).get(tag) or {}
        schema = body.get("config_schema") if isinstance(body, dict) else None
        if schema is not None and self.ok_schema(schema):
            self.config(runner.Schema(schema), config, path, repr(tag))

    def dependencies(self, body: dict[str, Any], path: Path) -> None:
        deps = body.get("dependencies")
        if not isinstance(deps, dict):
            return
        for key, target in deps.items():
            ref, optional = (
                (target, False)
                if isinstance(target, str)
                else (target.get("ref"), bool(target.get("optional")))
            )
            at = (*path, "dependencies", key)
            if not isinstance(ref, str):
                continue
            if ref not in self.kinds:
                if not optional:
                    self.unknown(ref, at, "id", choices=list(self.kinds))
                continue
            kind = self.kinds[ref][0]
            if kind not in ("resource", "task", "event", "context", "app"):
                self.report(
                    "ASM206",
                    at,
                    f"{ref!r} is a {kind}; it cannot be a dependency",
                    "depend on resources, tasks, events or contexts",
                )

    def ref(self, ref: str, at: Path, kinds: tuple[str, ...], what: str) -> None:
        found = self.kinds.get(ref)
        if found is None:
            self.unknown(
                ref, at, what, choices=[i for i, (k, _) in self.kinds.items() if k in kinds]
            )
        elif found[0] not in kinds:
            self.report(
                "ASM206",
                at,
                f"{ref!r} is a {found[0]}, not {_article(what)}",
                f"name {_article(what)} here",
            )

    def unknown(
        self, ref: str, at: Path, what: str, *, choices: list[str], key: bool = False
    ) -> None:
        guess = near(ref, choices)
        hint = f"did you mean {guess!r}?" if guess else f"declare {ref!r} in the manifest"
        self.report("ASM203", at, f"unknown {what} {ref!r}", hint, key=key)

    # -- import paths -------------------------------------------------------------

    def imports(self) -> None:
        if self.broken(("python_path",)) or self.broken(("allow_imports",)):
            return  # where modules may come from is unknown: checking would only mislead
        data = self.m.data
        folders = [
            self.m.base_dir / p for p in data.get("python_path", ["."]) if isinstance(p, str)
        ]
        allow = [a for a in data.get("allow_imports", []) if isinstance(a, str)]
        importer = Importer(folders, self.plugins.packages, allow)
        for section in ("resources", "middleware", "tasks", "hooks"):
            for id, body, path in self.each(section):
                for key in ("init", "run", "dispose"):
                    if isinstance(body.get(key), str):
                        self.callable(importer, section, id, body, (*path, key))
        for comp, body, path in self.uses:
            if self.broken(path):
                continue
            config = body.get("config") or {}
            for key in comp.imports:
                value = config.get(key) if isinstance(config, dict) else None
                items = value if isinstance(value, list) else [value]
                for i, text in enumerate(items):
                    if not isinstance(text, str):
                        continue
                    at = (
                        (*path, "config", key, i)
                        if isinstance(value, list)
                        else (*path, "config", key)
                    )
                    self.config_import(importer, comp, key, text, at)

    def config_import(
        self, importer: Importer, comp: Component, key: str, text: str, path: Path
    ) -> None:
        if text.isidentifier() and isinstance(getattr(builtins, text, None), type):
            self.imported(comp, key, text, getattr(builtins, text), path)
            return
        if text.isidentifier():
            guess = near(text, [n for n in dir(builtins) if n[0].isupper()])
            self.report(
                "ASM401",
                path,
                f"{text!r} is neither a builtin class nor an import path",
                (f"did you mean {guess!r}? " if guess else "")
                + "name a builtin (ConnectionError) or write `package.module:Class`",
            )
            return
        try:
            if not self.load:  # --no-import: the text and the allow-list only
                importer.check(text)
                return
            obj = importer.resolve(text)
        except ImportFailure as exc:
            p = exc.problem
            self.report(p.code, path, p.message, p.hint)
            return
        self.imported(comp, key, text, obj, path)

    def imported(self, comp: Component, key: str, text: str, obj: Any, path: Path) -> None:
        """Keep what ``text`` resolved to, if the component accepts it for ``key``."""
        accepts = comp.imports.get(key) if isinstance(comp.imports, Mapping) else None
        problem = accepts(obj) if accepts is not None else None
        if problem:
            self.report(
                "ASM603",
                path,
                f"config of {comp.name!r} (plugin {comp.plugin}): {text!r} {problem}",
                f"see the config schema of {comp.name!r} (`assemble schema`)",
                plugin=comp.plugin,
            )
            return
        self.result.imports[text] = obj

    def callable(
        self, importer: Importer, section: str, id: str, body: dict[str, Any], path: Path
    ) -> None:
        text = body[str(path[-1])]
        try:
            if not self.load:  # --no-import: the text and the allow-list only
                importer.check(text)
                return
            fn = importer.resolve(text)
        except ImportFailure as exc:
            p = exc.problem
            self.report(p.code, path, p.message, p.hint)
            self.result.broken.add(path[:2])
            return
        self.result.imports[text] = fn
        role, positional = ROLE[section]
        keys = (
            list(body.get("dependencies") or {})
            if isinstance(body.get("dependencies"), dict)
            else []
        )
        if path[-1] == "dispose":
            role, positional, keys = "dispose", ("value",), []
        problem = runner.signature_problem(fn, role, positional, keys)
        if problem:
            self.report(
                "ASM406",
                path,
                f"{KIND_OF_SECTION[section]} {id!r}: {problem}",
                "take each dependency as a keyword parameter named like its key (or **deps)",
            )

    # -- after compiling ----------------------------------------------------------

    def compiled(self) -> None:
        """Compile (plugins' factories and assemble_compile run here) and plan the app."""
        from ._compile import compile_app

        known = len(self.plugins.problems)
        try:
            app = compile_app(self.m, self.plugins, self.result.imports)
            runner.plan(runner.Store.build(app))
            self.result.app = app
        except runner.errors.RunnerError as exc:
            self.runtime_problems(exc)
        except Exception as exc:  # a plugin's factory or init-time code
            if debugging():
                raise
            self.report(
                "ASM604",
                (),
                f"compiling the app failed: {type(exc).__name__}: {exc}",
                "a plugin's component factory raised; run with --debug for its traceback",
            )
        self.result.diagnostics.extend(self.plugins.problems[known:])

    def runtime_problems(self, exc: runner.errors.RunnerError) -> None:
        problems = list(exc.exceptions) if isinstance(exc, ExceptionGroup) else [exc]
        for p in problems:
            if isinstance(p, runner.errors.CycleError):
                first = p.path[0]
                where = self.kinds.get(first, ("", (first,)))[1]
                self.report(
                    "ASM501",
                    (*where, "dependencies") if where[0] in SECTIONS else where,
                    str(p.message),
                    p.hint,
                )
            else:
                owner = str(getattr(p, "owner", None) or getattr(p, "id", None) or "")
                where = self.place_of(owner)
                hint = getattr(p, "hint", "")
                if isinstance(p, runner.errors.MissingDependencyError) and self.uses_type(where):
                    # the component's type asked for it: "mark it optional" is not for users
                    hint = (
                        f"declare {p.target!r} in the manifest (the component's type needs "
                        f"it as {p.key!r}), or point the component's config at one you have"
                    )
                self.report(
                    "ASM502",
                    where if where and where[0] in SECTIONS else (),
                    str(getattr(p, "message", p)),
                    hint,
                )

    def place_of(self, id: str) -> Path:
        """Where the component ``id`` is written; inline middleware ``t.middleware[0]`` too."""
        found = self.kinds.get(id)
        if found is not None:
            return found[1]
        inline = _INLINE.match(id)
        if inline and inline.group(1) in self.kinds:
            return (*self.kinds[inline.group(1)][1], "middleware", int(inline.group(2)))
        return ()

    def uses_type(self, where: Path) -> bool:
        node: Any = self.m.data
        for part in where:
            node = (
                node.get(part)
                if isinstance(node, dict)
                else (node[part] if isinstance(node, list) and isinstance(part, int) else None)
            )
        return isinstance(node, dict) and "use" in node

    def plugin_checks(self) -> None:
        def sink(plugin: str, code: str, at: tuple[Any, ...], message: str, hint: str) -> None:
            self.report(code, at, message, hint, plugin=plugin)

        def failed(plugin: str, hook: str, exc: Exception) -> None:
            self.report(
                "ASM604",
                (),
                f"plugin {plugin!r} failed in {hook}: {type(exc).__name__}: {exc}",
                "this is a bug in the plugin; run with --debug for its traceback",
                plugin=plugin,
            )

        # pluggy's order (wrappers, tryfirst, trylast); each plugin's report names it
        self.plugins.call(
            "assemble_validate", on_failure=failed, manifest=self.m, report=Report("", sink)
        )


_INLINE = re.compile(r"^(.+)\.middleware\[(\d+)\]$")  # compile's ids for inline middleware


@cache
def _component_schema_cached(name: str, plugin: str, schema_json: str) -> runner.Schema:
    return runner.Schema(json.loads(schema_json), owner=name)


def _component_schema(comp: Component) -> runner.Schema:
    return _component_schema_cached(
        comp.name, comp.plugin, json.dumps(comp.config_schema, sort_keys=True)
    )


def _owner(path: Path) -> str:
    if len(path) >= 2 and path[0] in SECTIONS:
        kind = KIND_OF_SECTION[str(path[0])]
        return f"in {kind} {path[1]!r}"
    if len(path) == 1:
        return "at the top level"
    return f"at {pointer(path)}" if path else "at the top level"


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a map"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_hint(path: Path, expected: str) -> str:
    if expected == "object":
        return "write a map: `key: value` lines indented under it"
    if expected == "array":
        return "write a list: `[a, b]` or `- item` lines"
    if expected == "string":
        return "quote the value to make it text"
    if expected in ("number", "integer"):
        return "write a number without quotes"
    if expected == "boolean":
        return "write true or false (without quotes)"
    return "see the manifest reference: docs/manifest.md"


def _redacted_message(err: SchemaError) -> str:
    return f"the value (from the environment, {REDACTED}) fails `{err.validator}`"


def _section_for(kind: str) -> str:
    return {"resource": "resources", "tag": "tags (as a task's tag)"}.get(kind, "middleware")


def _runner_kind(d: runner.Definition) -> str:
    if isinstance(d, runner.AsyncContext):
        return "context"
    if isinstance(d, runner.TaskMiddleware | runner.ResourceMiddleware):
        return "middleware"
    return d.kind
