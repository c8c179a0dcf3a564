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
    defs["interpolation"] = INTERPOLATION
    rules: dict[str, list[dict[str, Any]]] = {"resource": [], "middleware": []}
    use_names: dict[str, list[str]] = {"resource": [], "middleware": []}
    for name, comp in sorted(plugins.components.items()):
        key = f"component:{name}"
        config = comp.config_schema if comp.config_schema is not None else {}
        defs[key] = {
            "description": f"{name} ({comp.kind}, plugin {comp.plugin})",
            **_interpolable(_as_dict(copy.deepcopy(config))),
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


#: A whole value that is one ``${...}``: it takes the type of what it resolves to
#: (``port: ${env.PORT}`` is an integer), so the raw manifest an editor checks may hold
#: it wherever a config value goes.
INTERPOLATION: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\$\{[^{}]+\}$",
    "description": "${config.NAME}, ${env.NAME} or ${env.NAME:-default}: resolved before "
    "the value is checked",
}
_ANY_INTERPOLATION = {"$ref": "#/$defs/interpolation"}


def _interpolable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every config value position also accepting a ``${...}`` string."""
    for key in ("properties", "patternProperties", "$defs"):
        if isinstance(schema.get(key), dict):
            schema[key] = {
                k: _value(v) if key != "$defs" else _walk(v) for k, v in schema[key].items()
            }
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = _value(schema[key])
    if isinstance(schema.get("prefixItems"), list):
        schema["prefixItems"] = [_value(v) for v in schema["prefixItems"]]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list):
            schema[key] = [_walk(v) for v in schema[key]]
    for key in ("if", "then", "else", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = _walk(schema[key])
    return schema


def _walk(schema: Any) -> Any:
    return _interpolable(schema) if isinstance(schema, dict) else schema


def _value(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema  # true / false: nothing to widen
    shown = {k: schema[k] for k in ("description", "default") if k in schema}  # editors
    return {**shown, "anyOf": [_interpolable(schema), _ANY_INTERPOLATION]}


def _as_dict(schema: Any) -> dict[str, Any]:
    if isinstance(schema, bool):
        return {} if schema else {"not": {}}
    return dict(schema)
