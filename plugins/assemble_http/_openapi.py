"""OpenAPI 3.1 for the tasks tagged ``http.route``, and a self-contained docs page.

The document is built from what the store holds: each route task's tag config (method,
path, status), its input and result schemas (draft 2020-12, which OpenAPI 3.1 takes as
is) and its middleware chain (``auth.jwt`` adds bearer security; ``rate_limit``,
``timeout`` and the others add the error statuses they can produce).
"""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import assembler
import runner

from ._routes import RouteConfig

ROUTE_TAG = "http.route"

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string", "description": "a stable error code"},
                "message": {"type": "string", "description": "what went wrong"},
                "request_id": {
                    "type": "string",
                    "description": "the request's X-Request-ID (also in the server log)",
                },
            },
        }
    },
}

_ERROR_TEXT = {
    400: "Malformed request (invalid JSON, too deep, or not a JSON value)",
    401: "Missing, invalid or expired bearer token",
    403: "The caller's roles do not allow this operation",
    413: "Request body too large",
    415: "The body is not JSON (send Content-Type: application/json)",
    422: "The input does not match the task's input schema, or holds what no store keeps "
    "(a lone surrogate, a NUL, an integer past 64 bits)",
    429: "Rate limit exceeded; retry after the number of seconds in Retry-After",
    500: "Unexpected error (the message is generic; the log has the details)",
    503: "Temporarily unavailable",
    504: "The task did not finish in time",
}

# component type (a middleware's meta["use"]) -> the error statuses it can answer with
_MIDDLEWARE_STATUSES: dict[str, tuple[int, ...]] = {
    "auth.jwt": (401,),
    "auth.rbac": (401, 403),
    "rate_limit": (429,),
    "timeout": (504,),
    "circuit_breaker": (503,),
}

_METHOD_ORDER = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_QUERY_METHODS = frozenset({"GET", "DELETE", "HEAD"})
_NO_CONTENT = frozenset({204, 205, 304})
_PARAM = re.compile(r"\{([^{}:]+)(?::([^{}]+))?\}")
_CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
}
_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "a JWT in `Authorization: Bearer <token>` (checked by auth.jwt)",
}


def openapi_document(
    store: runner.Store, *, title: str, version: str, description: str | None = None
) -> dict[str, Any]:
    """An OpenAPI 3.1.0 document for every task in ``store`` tagged ``http.route``.

    Deterministic: paths are sorted, methods in OpenAPI's order, parameters in path order
    then in the input schema's property order.
    """
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    schemas: dict[str, Any] = {"Error": copy.deepcopy(_ERROR_SCHEMA)}
    components: dict[str, Any] = {"schemas": schemas}
    chains = _middleware_chains(store)
    paths: dict[str, dict[str, Any]] = {}
    for tagged in store.tasks_with_tag(ROUTE_TAG):
        task, config = tagged.definition, tagged.config
        if not isinstance(config, Mapping) or not {"method", "path"} <= config.keys():
            continue  # not a route the server would serve (validation reports it)
        route = assembler.from_config(RouteConfig, config)
        method, raw_path = route.method.upper(), route.path
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", raw_path)
        item = paths.setdefault(path, {})
        if method.lower() in item:  # a duplicate route: validation reports it; keep the first
            continue
        uses = chains.get(task.id, [])
        op = _operation(task, method, raw_path, route.status, uses, schemas)
        if any(use == "auth.jwt" for use, _ in uses):
            components.setdefault("securitySchemes", {})["bearerAuth"] = dict(_BEARER)
        item[method.lower()] = op
    ordered = {
        path: {m: paths[path][m] for m in _method_order(paths[path])} for path in sorted(paths)
    }
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": ordered,
        "components": {k: components[k] for k in sorted(components)},
    }


def _method_order(item: Mapping[str, Any]) -> list[str]:
    known = [m for m in _METHOD_ORDER if m in item]
    return known + sorted(m for m in item if m not in _METHOD_ORDER)


def _operation(
    task: runner.Task,
    method: str,
    raw_path: str,
    status: int,
    uses: list[tuple[str, Any]],
    schemas: dict[str, Any],
) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": task.id}
    text = task.meta.get("description")
    if isinstance(text, str) and text.strip():
        summary = text.strip().splitlines()[0].strip()
        op["summary"] = summary
        if text.strip() != summary:
            op["description"] = text.strip()
    input_schema = _raw(task.input_schema, task.id, "input", schemas)
    props = _object_parts(input_schema)[0]
    parameters: list[dict[str, Any]] = []
    path_names: list[str] = []
    for m in _PARAM.finditer(raw_path):
        name, converter = m.group(1), m.group(2)
        if name in path_names:
            continue
        path_names.append(name)
        if name in props:
            schema = copy.deepcopy(props[name])
        else:
            schema = dict(_CONVERTER_SCHEMAS.get(converter or "", {"type": "string"}))
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    rest = _without(input_schema, path_names)
    if method in _QUERY_METHODS:
        rest_props, rest_required = _object_parts(rest)
        for name, schema in rest_props.items():
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in rest_required,
                "schema": copy.deepcopy(schema),
            }
            if isinstance(schema, Mapping) and isinstance(schema.get("description"), str):
                param["description"] = schema["description"]
            parameters.append(param)
    else:
        op["requestBody"] = {
            "required": bool(_object_parts(rest)[1]),
            "content": {
                "application/json": {"schema": rest if rest is not None else {"type": "object"}}
            },
        }
    if parameters:
        op["parameters"] = parameters
    op["responses"] = _responses(task, method, status, "requestBody" in op, uses, schemas)
    if any(use == "auth.jwt" for use, _ in uses):
        op["security"] = [{"bearerAuth": []}]
    return op


def _responses(
    task: runner.Task,
    method: str,
    status: int,
    has_body: bool,
    uses: list[tuple[str, Any]],
    schemas: dict[str, Any],
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "Success"}
    if status not in _NO_CONTENT and method != "HEAD":
        result = _raw(task.result_schema, task.id, "result", schemas)
        ok["content"] = {"application/json": {"schema": result if result is not None else {}}}
    statuses = {400, 422, 500}
    if has_body:
        statuses.update((413, 415))
    for use, config in uses:
        statuses.update(_MIDDLEWARE_STATUSES.get(use, ()))
        if use == "rate_limit" and _setting(config, "backend") == "redis":
            statuses.add(503)  # the limiter's store is unreachable
    out: dict[str, Any] = {str(status): ok}
    for code in sorted(statuses - {status}):
        out[str(code)] = _error_response(code)
    out["default"] = {
        "description": "Any other error the task raises, with its HTTP status",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return out


def _setting(config: Any, key: str) -> Any:
    """``key`` of a middleware use's config: a mapping as written, or a component's typed
    config object (``assembler.option``)."""
    if isinstance(config, Mapping):
        return config.get(key)
    return getattr(config, key, None)


def _error_response(code: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_TEXT.get(code, "Error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if code in (429, 503):
        response["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return response


def _raw(schema: Any, task_id: str, what: str, schemas: dict[str, Any]) -> Any:
    """A deep copy of a task's JSON Schema, its local ``$ref``s made document-wide.

    A schema's ``#/$defs/...`` points into the schema itself; in the OpenAPI document
    ``#`` is the document. So a schema with local refs is also put under
    ``components/schemas`` and its refs are rewritten to point there.
    """
    if schema is None:
        return None
    value = schema.schema if isinstance(schema, runner.Schema) else schema
    raw = copy.deepcopy(value if isinstance(value, bool) else dict(value))
    if isinstance(raw, bool) or "$id" in raw or not _has_local_ref(raw):
        return raw
    name = f"{re.sub(r'[^A-Za-z0-9._-]', '_', task_id)}.{what}"
    prefix = f"#/components/schemas/{name}"
    rewritten = _rewrite_refs(raw, prefix)
    schemas[name] = copy.deepcopy(rewritten)
    return rewritten


def _has_local_ref(node: Any) -> bool:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            return True
        return any(_has_local_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_local_ref(v) for v in node)
    return False


def _rewrite_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, Mapping):
        out = {k: _rewrite_refs(v, prefix) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            out["$ref"] = prefix + ref[1:]
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in node]
    return node


def _object_parts(schema: Any) -> tuple[dict[str, Any], list[str]]:
    """The ``properties`` and ``required`` of an object schema (empty for anything else)."""
    if not isinstance(schema, Mapping):
        return {}, []
    props = schema.get("properties")
    required = schema.get("required")
    return (
        dict(props) if isinstance(props, Mapping) else {},
        [r for r in required if isinstance(r, str)] if isinstance(required, list) else [],
    )


def _without(schema: Any, names: Iterable[str]) -> Any:
    """``schema`` minus the properties ``names`` (taken by the path)."""
    names = set(names)
    if not names or not isinstance(schema, Mapping):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), Mapping):
        out["properties"] = {k: v for k, v in out["properties"].items() if k not in names}
    if isinstance(out.get("required"), list):
        out["required"] = [r for r in out["required"] if r not in names]
        if not out["required"]:
            del out["required"]
    return out


def _middleware_chains(store: runner.Store) -> dict[str, list[tuple[str, Any]]]:
    """For each task, ``(component type, config)`` of every middleware around it."""
    try:
        layers = runner.plan(store).task_layers
    except runner.errors.RunnerError:  # an app that would not start: approximate the chain
        layers = {task.id: _approximate_layers(store, task) for task in store.tasks.values()}
    return {
        task_id: [(str(mw.meta.get("use", "")), config) for mw, config in task_layers]
        for task_id, task_layers in layers.items()
    }


def _approximate_layers(store: runner.Store, task: runner.Task) -> list[tuple[Any, Any]]:
    own: list[tuple[Any, Any]] = []
    for use in task.middleware:
        mw = store.find(use.id)
        if isinstance(mw, runner.TaskMiddleware):
            own.append((mw, use.config if use.configured else mw.config))
    mine = {mw.id for mw, _ in own}
    everywhere = [
        (mw, mw.config)
        for mw in store.task_middleware.values()
        if mw.id not in mine
        and (mw.everywhere is True or (callable(mw.everywhere) and mw.everywhere(task)))
    ]
    return everywhere + own


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1b1b1b; }
h1 { margin-bottom: .2rem; }
.op { border: 1px solid #ddd; border-radius: 6px; margin: 1rem 0; padding: .6rem 1rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: 700; text-transform: uppercase; }
.path { font-family: ui-monospace, monospace; font-weight: 600; }
.lock { margin-left: .5rem; font-size: .85rem; color: #8a5a00; }
.summary { color: #444; margin: .3rem 0; }
.opid { margin-left: .5rem; font-size: .85rem; color: #666; font-family: ui-monospace, monospace; }
pre { background: #f6f8fa; padding: .6rem; overflow: auto; border-radius: 4px; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; }
details { margin: .3rem 0; }
#error { color: #b00020; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<p>OpenAPI document: <a id="spec-link"></a></p>
<p id="error"></p>
<div id="ops">Loading…</div>
<script>
(function () {
  "use strict";
  var url = __URL__;
  var link = document.getElementById("spec-link");
  link.href = url;
  link.textContent = url;
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function pretty(value) { return el("pre", JSON.stringify(value, null, 2)); }
  function section(title, value) {
    var d = el("details");
    d.appendChild(el("summary", title));
    d.appendChild(pretty(value));
    return d;
  }
  function render(doc) {
    var ops = document.getElementById("ops");
    ops.textContent = "";
    if (doc.info && doc.info.description) {
      ops.appendChild(el("p", doc.info.description));
    }
    var paths = doc.paths || {};
    Object.keys(paths).forEach(function (path) {
      Object.keys(paths[path]).forEach(function (method) {
        var op = paths[path][method];
        var box = el("div", null, "op");
        var head = el("div");
        head.appendChild(el("span", method, "method"));
        head.appendChild(el("span", path, "path"));
        if (op.security && op.security.length) {
          var schemes = Object.keys(op.security[0]).join(", ");
          head.appendChild(el("span", "requires " + schemes, "lock"));
        }
        head.appendChild(el("span", op.operationId, "opid"));
        box.appendChild(head);
        if (op.summary) { box.appendChild(el("div", op.summary, "summary")); }
        if (op.description && op.description !== op.summary) {
          box.appendChild(el("div", op.description));
        }
        if (op.parameters && op.parameters.length) {
          var t = el("table");
          var hr = el("tr");
          ["name", "in", "required", "schema"].forEach(function (h) {
            hr.appendChild(el("th", h));
          });
          t.appendChild(hr);
          op.parameters.forEach(function (p) {
            var r = el("tr");
            r.appendChild(el("td", p.name));
            r.appendChild(el("td", p["in"]));
            r.appendChild(el("td", p.required ? "yes" : "no"));
            r.appendChild(el("td", JSON.stringify(p.schema)));
            t.appendChild(r);
          });
          box.appendChild(t);
        }
        if (op.requestBody) {
          var c = op.requestBody.content || {};
          var j = c["application/json"] || {};
          box.appendChild(section("Request body (application/json)", j.schema || {}));
        }
        Object.keys(op.responses || {}).forEach(function (status) {
          var resp = op.responses[status];
          var content = (resp.content || {})["application/json"];
          var title = status + " " + (resp.description || "");
          if (content) { box.appendChild(section(title, content.schema || {})); }
          else { box.appendChild(el("div", title)); }
        });
        ops.appendChild(box);
      });
    });
    if (!ops.firstChild) { ops.textContent = "No routes."; }
    var schemas = (doc.components || {}).schemas;
    if (schemas) { ops.appendChild(section("Schemas", schemas)); }
  }
  fetch(url, {headers: {"Accept": "application/json"}})
    .then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    })
    .then(render)
    .catch(function (e) {
      document.getElementById("ops").textContent = "";
      document.getElementById("error").textContent = "Could not load " + url + ": " + e.message;
    });
})();
</script>
</body>
</html>
"""


def docs_page(openapi_url: str, title: str) -> str:
    """A self-contained HTML page (no external assets) that renders ``openapi_url``."""
    url = json.dumps(openapi_url)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        url = url.replace(raw, escaped)  # nothing in the URL can close the <script>
    url = url.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    values = {"__TITLE__": html.escape(title, quote=True), "__URL__": url}
    return re.sub("__TITLE__|__URL__", lambda m: values[m.group(0)], _PAGE)
