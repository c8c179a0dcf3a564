"""The composed schema: the core manifest schema plus every installed plugin's configs."""

from __future__ import annotations

import copy
from typing import Any

from ._plugins import Plugins
from ._validate import manifest_schema


def composed_schema(plugins: Plugins) -> dict[str, Any]:
    """Core schema with ``if/then`` on ``use`` for each component type's config.

    Editors (yaml-language-server) and CI (check-jsonschema) read it: a component's
    ``config`` is checked against the schema of the type its ``use`` names, and a
    task's ``tags`` against each plugin tag's config schema.
    """
    schema = copy.deepcopy(manifest_schema())
    defs = schema["$defs"]
    rules: dict[str, list[dict[str, Any]]] = {"resource": [], "middleware": []}
    use_names: dict[str, list[str]] = {"resource": [], "middleware": []}
    for name, comp in sorted(plugins.components.items()):
        key = f"component:{name}"
        config = comp.config_schema if comp.config_schema is not None else {}
        defs[key] = {
            "description": f"{name} ({comp.kind}, plugin {comp.plugin})",
            **_as_dict(config),
        }
        if comp.kind == "tag":
            defs["tag_map"].setdefault("properties", {})[name] = {"$ref": f"#/$defs/{key}"}
            continue
        target = "resource" if comp.kind == "resource" else "middleware"
        use_names[target].append(name)
        rules[target].append(
            {
                "if": {"required": ["use"], "properties": {"use": {"const": name}}},
                "then": {"properties": {"config": {"$ref": f"#/$defs/{key}"}}},
            }
        )
    for target in ("resource", "middleware"):
        if rules[target]:
            defs[target]["allOf"] = rules[target]
        names = use_names[target]  # `use:` names an installed type, like validate says
        defs[target]["properties"]["use"] = {"enum": names} if names else False
    # What validate checks in code, spelled out for editors and CI.
    defs["task"]["anyOf"] = [{"required": ["run"]}, {"required": ["remote"]}]
    defs["middleware"]["anyOf"] = [{"required": ["use"]}, {"required": ["run"]}]
    inline = defs["middleware_list"]["items"]["oneOf"][1]
    inline["properties"]["use"] = defs["middleware"]["properties"]["use"]
    if rules["middleware"]:
        inline["allOf"] = rules["middleware"]
    return schema


def _as_dict(schema: Any) -> dict[str, Any]:
    if isinstance(schema, bool):
        return {} if schema else {"not": {}}
    return dict(schema)
