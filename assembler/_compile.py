"""Compilation: a validated manifest becomes runner definitions under one app resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import runner

from ._config import from_config
from ._manifest import SECTIONS, Manifest
from ._plugins import Component, Plugins


def compile_app(manifest: Manifest, plugins: Plugins, imports: dict[str, Any]) -> runner.Resource:
    """The app resource (id = the manifest's ``id``) registering every definition.

    ``imports`` maps import paths to the objects validation resolved. Plugins'
    ``assemble_compile`` hooks run last and may add or replace definitions.
    """
    c = _Compiler(manifest, plugins, imports)
    defs = c.all()
    by_id = {d.id: d for d in defs}
    for _, extra in plugins.call("assemble_compile", manifest=manifest, definitions=list(defs)):
        for d in extra or ():
            by_id[d.id] = d
    data = manifest.data
    meta = {"description": data["description"]} if "description" in data else {}
    return runner.Resource(manifest.id, register=list(by_id.values()), meta=meta)


class _Compiler:
    def __init__(self, manifest: Manifest, plugins: Plugins, imports: dict[str, Any]) -> None:
        self.m, self.plugins, self.imports = manifest, plugins, imports
        self.tags: dict[str, runner.Tag] = {}
        self.extra: list[runner.Definition] = []

    def all(self) -> list[runner.Definition]:
        declared = {id for section in SECTIONS for id, _, _ in self.m.components(section)}
        defs: list[runner.Definition] = [
            d for d, _ in self.plugins.provided.values() if d.id not in declared
        ]  # a manifest may configure a provided one: `logger: {use: logger, config: ...}`
        sections: list[tuple[str, Callable[[str, dict[str, Any]], runner.Definition]]] = [
            ("tags", self.tag),
            ("contexts", lambda id, body: runner.AsyncContext(id, meta=_meta(body))),
            ("events", self.event),
            ("resources", self.resource),
            ("middleware", self.middleware),
            ("tasks", self.task),
            ("hooks", self.hook),
        ]
        for section, build in sections:
            for id, body, _ in self.m.components(section):
                defs.append(build(id, body))
        declared = {d.id for d in defs}
        return defs + self.extra + [t for t in self.tags.values() if t.id not in declared]

    def fn(self, path: str) -> Any:
        return self.imports[path]

    def resolved(self, comp: Component, config: Any) -> Any:
        """``config`` with the import paths under ``comp.imports`` replaced by their
        objects; the typed object of ``comp.config`` when the component declares one."""
        if comp.config is not None:
            return from_config(comp.config, self._imported(comp, config))
        return self._imported(comp, config)

    def _imported(self, comp: Component, config: Any) -> Any:
        if not comp.imports or not isinstance(config, dict):
            return config
        out = dict(config)
        for key in comp.imports:
            value = out.get(key)
            if isinstance(value, str):
                out[key] = self.imports[value]
            elif isinstance(value, list):
                out[key] = [self.imports[v] if isinstance(v, str) else v for v in value]
        return out

    def tag(self, id: str, body: dict[str, Any]) -> runner.Tag:
        tag = runner.Tag(id, config_schema=body.get("config_schema"), meta=_meta(body))
        self.tags[id] = tag
        return tag

    def tag_uses(self, body: dict[str, Any]) -> list[runner.TagUse]:
        uses = []
        for id, config in (body.get("tags") or {}).items():
            tag = self.tags.get(id)
            if tag is None:  # a plugin's tag type
                comp = self.plugins.components[id]
                tag = self.tags[id] = runner.Tag(id, config_schema=comp.config_schema)
            uses.append(tag.with_(config))
        return uses

    def event(self, id: str, body: dict[str, Any]) -> runner.Event:
        return runner.Event(
            id,
            payload_schema=body.get("payload_schema"),
            tags=self.tag_uses(body),
            meta=_meta(body),
        )

    def resource(self, id: str, body: dict[str, Any]) -> runner.Resource:
        config = body.get("config", {} if "use" in body else None)
        deps = _deps(body.get("dependencies"))
        if "use" in body:
            comp = self.plugins.components[body["use"]]
            config = self.resolved(comp, config)
            init, dispose = comp.init, comp.dispose
            deps = {**_deps(comp.dependencies_for(config)), **deps}
        else:
            init = self.fn(body["init"]) if "init" in body else None
            dispose = self.fn(body["dispose"]) if "dispose" in body else None
        return runner.Resource(
            id,
            init=init,
            dispose=dispose,
            config=config,
            config_schema=body.get("config_schema"),
            dependencies=deps,
            middleware=self.middleware_list(id, body, resource=True),
            tags=self.tag_uses(body),
            meta=_meta(body, use=body.get("use")),
        )

    def middleware(self, id: str, body: dict[str, Any]) -> runner.Definition:
        config = body.get("config", {} if "use" in body else None)
        if "use" in body:
            comp = self.plugins.components[body["use"]]
            return self.component_middleware(id, comp, config, body)
        cls = runner.ResourceMiddleware if body.get("for") == "resources" else runner.TaskMiddleware
        return cls(
            id,
            run=self.fn(body["run"]),
            config=config,
            config_schema=body.get("config_schema"),
            dependencies=_deps(body.get("dependencies")),
            everywhere=bool(body.get("everywhere", False)),
            meta=_meta(body),
        )

    def component_middleware(
        self, id: str, comp: Component, config: Any, body: dict[str, Any]
    ) -> runner.Definition:
        config = self.resolved(comp, config)
        run = comp.factory(config) if comp.factory is not None else comp.run
        cls = (
            runner.ResourceMiddleware
            if comp.kind == "resource_middleware"
            else runner.TaskMiddleware
        )
        return cls(
            id,
            run=run,  # type: ignore[arg-type]
            config=config,
            dependencies={
                **_deps(comp.dependencies_for(config)),
                **_deps(body.get("dependencies")),
            },
            everywhere=bool(body.get("everywhere", False)),
            meta=_meta(body, use=comp.name),
        )

    def middleware_list(
        self, owner: str, body: dict[str, Any], *, resource: bool = False
    ) -> list[Any]:
        out: list[Any] = []
        for i, entry in enumerate(body.get("middleware") or ()):
            if isinstance(entry, str):
                out.append(entry)
                continue
            comp = self.plugins.components[entry["use"]]
            mw = self.component_middleware(
                f"{owner}.middleware[{i}]", comp, entry.get("config", {}), {}
            )
            self.extra.append(mw)
            out.append(mw)
        return out

    def task(self, id: str, body: dict[str, Any]) -> runner.Task:
        return runner.Task(
            id,
            run=self.fn(body["run"]) if "run" in body else None,
            remote=bool(body.get("remote", False)),
            dependencies=_deps(body.get("dependencies")),
            middleware=self.middleware_list(id, body),
            tags=self.tag_uses(body),
            input_schema=body.get("input_schema"),
            result_schema=body.get("result_schema"),
            meta=_meta(body, idempotent=bool(body.get("idempotent", False))),
        )

    def hook(self, id: str, body: dict[str, Any]) -> runner.Hook:
        return runner.Hook(
            id,
            on=body["on"],
            run=self.fn(body["run"]),
            order=body.get("order", 0),
            dependencies=_deps(body.get("dependencies")),
            meta=_meta(body),
        )


def _deps(deps: Any) -> dict[str, runner.Ref]:
    out = {}
    for key, target in (deps or {}).items():
        if isinstance(target, str):
            out[key] = runner.Ref(target)
        elif isinstance(target, runner.Ref):
            out[key] = target
        elif isinstance(target, runner.Definition):
            out[key] = runner.Ref(target.id)
        else:
            out[key] = runner.Ref(target["ref"], optional=bool(target.get("optional", False)))
    return out


def _meta(body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    meta = {k: v for k, v in extra.items() if v is not None}
    if "description" in body:
        meta["description"] = body["description"]
    return meta
