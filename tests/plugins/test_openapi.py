"""OpenAPI 3.1 from ``http.route`` tasks, and the docs page (issue 5)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

import assembler
import runner
from assemble_http._openapi import docs_page, openapi_document

from ._apps import write

ROUTE = runner.Tag("http.route")
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _ok(input: Any) -> Any:
    return input


async def _pass(call: runner.TaskCall, config: Any) -> Any:
    return await call.next(call.input)


def mw(id: str, use: str | None, *, everywhere: bool = False, config: Any = None) -> Any:
    return runner.TaskMiddleware(
        id,
        run=_pass,
        everywhere=everywhere,
        config=config,
        meta={"use": use} if use else {},
    )


def route(id: str, method: str, path: str, status: int | None = None, **kw: Any) -> runner.Task:
    config: dict[str, Any] = {"method": method, "path": path}
    if status is not None:
        config["status"] = status
    return runner.Task(id, run=_ok, tags=[ROUTE.with_(config)], **kw)


def store(*defs: runner.Definition) -> runner.Store:
    return runner.Store.build(runner.Resource("app", register=[ROUTE, *defs]))


def doc(*defs: runner.Definition) -> dict[str, Any]:
    return openapi_document(store(*defs), title="Users", version="1.2.3")


USER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
}


def realistic() -> list[runner.Definition]:
    jwt = mw("jwt", "auth.jwt")
    limit = mw("limit", "rate_limit", config={"max_requests": 5, "window": "1s"})
    slow = mw("slow", "timeout", config={"after": "2s"})
    return [
        jwt,
        limit,
        slow,
        route(
            "get_user",
            "GET",
            "/users/{id}",
            middleware=[jwt, slow],
            input_schema={
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "integer", "minimum": 1}},
            },
            result_schema=USER,
            meta={"description": "Get one user.\nReturns 404 when there is none."},
        ),
        route(
            "list_users",
            "GET",
            "/users",
            input_schema={
                "type": "object",
                "required": ["limit"],
                "properties": {
                    "limit": {"type": "integer", "maximum": 100, "description": "page size"},
                    "q": {"type": "string"},
                },
            },
            result_schema={"type": "array", "items": USER},
            middleware=["limit"],
        ),
        route(
            "create_user",
            "POST",
            "/users",
            201,
            input_schema={
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1}},
                "additionalProperties": False,
            },
            result_schema=USER,
            middleware=[jwt, limit.with_({"max_requests": 1, "window": "1s", "backend": "redis"})],
            meta={"description": "Create a user"},
        ),
        route("delete_user", "DELETE", "/users/{id}", 204, middleware=["jwt"]),
        route("health", "GET", "/health"),
    ]


def test_realistic_app_is_valid_openapi_31() -> None:
    d = doc(*realistic())
    OpenAPIV31SpecValidator(d).validate()  # raises on any violation of the 3.1 schema
    validate(d)  # and the version is detected from the document itself
    assert d["openapi"] == "3.1.0"
    assert d["info"] == {"title": "Users", "version": "1.2.3"}
    assert list(d["paths"]) == ["/health", "/users", "/users/{id}"]
    assert list(d["paths"]["/users/{id}"]) == ["get", "delete"]
    assert json.loads(json.dumps(d)) == d  # plain JSON values only


def test_the_validator_rejects_a_broken_document() -> None:
    d = doc(*realistic())
    del d["paths"]["/users/{id}"]["get"]["parameters"]
    with pytest.raises(Exception, match="id"):
        OpenAPIV31SpecValidator(d).validate()


def test_get_with_path_parameter_jwt_and_timeout() -> None:
    d = doc(*realistic())
    op = d["paths"]["/users/{id}"]["get"]
    assert op["operationId"] == "get_user"
    assert op["summary"] == "Get one user."
    assert op["description"] == "Get one user.\nReturns 404 when there is none."
    assert op["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    ]
    assert "requestBody" not in op
    assert op["security"] == [{"bearerAuth": []}]
    assert d["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert d["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert d["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"
    assert list(op["responses"]) == ["200", "400", "401", "422", "500", "504", "default"]
    assert op["responses"]["200"]["content"] == {"application/json": {"schema": USER}}
    for code in ("400", "401", "422", "500", "504", "default"):
        assert op["responses"][code]["content"] == {"application/json": {"schema": ERROR_REF}}
    assert d["components"]["schemas"]["Error"] == {
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


def test_list_with_query_parameters_and_rate_limit() -> None:
    op = doc(*realistic())["paths"]["/users"]["get"]
    assert op["parameters"] == [
        {
            "name": "limit",
            "in": "query",
            "required": True,
            "schema": {"type": "integer", "maximum": 100, "description": "page size"},
            "description": "page size",
        },
        {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    assert "security" not in op
    assert "summary" not in op
    assert list(op["responses"]) == ["200", "400", "422", "429", "500", "default"]
    assert op["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": USER,
    }


def test_post_with_body_status_and_configured_middleware_use() -> None:
    op = doc(*realistic())["paths"]["/users"]["post"]
    assert op["summary"] == "Create a user"
    assert "description" not in op
    assert "parameters" not in op
    assert op["requestBody"] == {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "minLength": 1}},
                    "additionalProperties": False,
                }
            }
        },
    }
    assert op["security"] == [{"bearerAuth": []}]
    # 413: a body over the limit; 415: a body that is not JSON; 503: the redis backend
    # of that rate_limit use is down
    assert list(op["responses"]) == [
        "201", "400", "401", "413", "415", "422", "429", "500", "503", "default"
    ]  # fmt: skip
    assert op["responses"]["415"]["content"]["application/json"]["schema"] == ERROR_REF
    assert op["responses"]["201"]["content"]["application/json"]["schema"] == USER


def test_delete_204_has_no_content_and_path_param_defaults_to_string() -> None:
    op = doc(*realistic())["paths"]["/users/{id}"]["delete"]
    assert op["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert op["responses"]["204"] == {"description": "Success"}
    assert op["security"] == [{"bearerAuth": []}]


def test_body_schema_loses_path_params() -> None:
    d = doc(
        route(
            "rename",
            "PATCH",
            "/users/{id}",
            input_schema={
                "type": "object",
                "required": ["id", "name"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
        ),
        route("touch", "PUT", "/users/{id}/touch", input_schema=USER | {"required": ["id"]}),
    )
    OpenAPIV31SpecValidator(d).validate()
    op = d["paths"]["/users/{id}"]["patch"]
    assert op["parameters"][0]["schema"] == {"type": "integer"}
    assert op["requestBody"]["required"] is True
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}},
    }
    touch = d["paths"]["/users/{id}/touch"]["put"]["requestBody"]
    assert touch == {
        "required": False,  # nothing left that the body must carry
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"name": {"type": "string"}}}
            }
        },
    }


def test_no_schemas_and_no_auth() -> None:
    d = doc(route("ping", "POST", "/ping"), route("pong", "GET", "/pong"))
    OpenAPIV31SpecValidator(d).validate()
    post = d["paths"]["/ping"]["post"]
    assert post["requestBody"] == {
        "required": False,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    assert post["responses"]["200"]["content"] == {"application/json": {"schema": {}}}
    get = d["paths"]["/pong"]["get"]
    assert "parameters" not in get
    assert list(get["responses"]) == ["200", "400", "422", "500", "default"]
    assert "securitySchemes" not in d["components"]
    assert "security" not in get


def test_everywhere_jwt_secures_every_route() -> None:
    d = doc(
        mw("jwt_all", "auth.jwt", everywhere=True),
        mw("other", "logging.tasks", everywhere=True),
        route("a", "GET", "/a"),
        route("b", "POST", "/b"),
        runner.Task("not_a_route", run=_ok),
    )
    assert d["paths"]["/a"]["get"]["security"] == [{"bearerAuth": []}]
    assert d["paths"]["/b"]["post"]["security"] == [{"bearerAuth": []}]
    assert "bearerAuth" in d["components"]["securitySchemes"]
    assert [op["operationId"] for p in d["paths"].values() for op in p.values()] == ["a", "b"]


def test_everywhere_predicate_and_rbac() -> None:
    only_admin = runner.TaskMiddleware(
        "jwt_admin",
        run=_pass,
        everywhere=lambda task: task.id.startswith("admin"),
        meta={"use": "auth.jwt"},
    )
    d = doc(
        only_admin,
        mw("admins", "auth.rbac"),
        route("admin_stats", "GET", "/admin/stats", middleware=["admins"]),
        route("public", "GET", "/public"),
    )
    admin = d["paths"]["/admin/stats"]["get"]
    assert admin["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(admin["responses"])
    public = d["paths"]["/public"]["get"]
    assert "security" not in public
    assert not {"401", "403"} & set(public["responses"])


def test_chain_is_approximated_when_the_app_would_not_start() -> None:
    jwt = mw("jwt", "auth.jwt", everywhere=True)
    slow = mw("slow", "timeout")
    broken = runner.Task(
        "broken",
        run=_ok,
        dependencies={"db": "missing_db"},  # runner.plan refuses this app
        tags=[ROUTE.with_({"method": "GET", "path": "/broken"})],
        middleware=[slow, "not_registered"],
    )
    s = runner.Store.build(runner.Resource("app", register=[ROUTE, jwt, slow, broken]))
    with pytest.raises(runner.errors.RunnerError):
        runner.plan(s)
    op = openapi_document(s, title="t", version="1")["paths"]["/broken"]["get"]
    assert op["security"] == [{"bearerAuth": []}]
    assert "504" in op["responses"]


def test_converter_in_path_and_first_of_two_duplicate_routes() -> None:
    d = doc(
        route("by_num", "GET", "/items/{n:int}"),
        route("also_by_num", "get", "/items/{n}"),
    )
    assert list(d["paths"]) == ["/items/{n}"]
    op = d["paths"]["/items/{n}"]["get"]
    assert op["operationId"] == "by_num"
    assert op["parameters"] == [
        {"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}}
    ]


def test_local_refs_point_into_components() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"owner": {"$ref": "#/$defs/person"}, "id": {"type": "string"}},
        "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    d = doc(
        route("get_pet", "GET", "/pets/{id}", input_schema=schema, result_schema=schema),
        route("make_pet", "POST", "/pets", input_schema=schema),
    )
    OpenAPIV31SpecValidator(d).validate()
    owner = d["paths"]["/pets/{id}"]["get"]["parameters"][1]
    assert owner["name"] == "owner"
    assert owner["schema"] == {"$ref": "#/components/schemas/get_pet.input/$defs/person"}
    body = d["paths"]["/pets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["owner"] == {
        "$ref": "#/components/schemas/make_pet.input/$defs/person"
    }

    def resolve(ref: str) -> Any:
        node: Any = d
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    for ref in (owner["schema"]["$ref"], body["properties"]["owner"]["$ref"]):
        assert resolve(ref) == schema["$defs"]["person"]
    result = d["paths"]["/pets/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert resolve(result["schema"]["properties"]["owner"]["$ref"]) == schema["$defs"]["person"]


def test_deterministic_and_copies_schemas() -> None:
    defs = realistic()
    s = store(*defs)
    first = openapi_document(s, title="Users", version="1", description="The users API")
    assert first["info"]["description"] == "The users API"
    snapshot = json.dumps(first)
    first["paths"]["/users"]["get"]["parameters"][0]["schema"]["maximum"] = 1
    first["paths"]["/users/{id}"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]["required"].append("x")
    second = openapi_document(s, title="Users", version="1", description="The users API")
    assert json.dumps(second) == snapshot
    assert USER["required"] == ["id", "name"]
    # registration order does not change the document
    shuffled = openapi_document(
        store(*reversed(defs)), title="Users", version="1", description="The users API"
    )
    assert json.dumps(shuffled) == snapshot


def test_docs_page_escapes_a_hostile_title_and_url() -> None:
    title = '</title><script>alert("x")</script>&'
    url = '/openapi.json?x="</script><script>alert(1)</script>'
    page = docs_page(url, title)
    assert "<script>alert" not in page
    assert "&lt;/title&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert page.count("</script>") == 1  # only the page's own script closes
    assert page.count("<script>") == 1
    match = re.search(r"var url = (.*?);\n", page)
    assert match is not None
    assert json.loads(match.group(1)) == url  # the JS string literal decodes to the URL
    assert "__TITLE__" not in page
    assert "__URL__" not in page


def test_docs_page_is_self_contained() -> None:
    page = docs_page("/openapi.json", "Users API")
    assert page.startswith("<!doctype html>")
    assert "<title>Users API</title>" in page
    assert 'var url = "/openapi.json";' in page
    assert "fetch(url" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no CDN, no remote
    assert "innerHTML" not in page  # document text is rendered as text, never as markup
    tricky = docs_page("/o", "__URL__ __TITLE__")  # placeholders in a title stay text
    assert "<title>__URL__ __TITLE__</title>" in tricky
    assert 'var url = "/o";' in tricky


class _RouteTagStub:
    """``http.route`` as a bare tag type, for when the http plugin is not installed."""

    __plugin_name__ = "http_route_stub"

    @assembler.hookimpl
    def assemble_components(self) -> list[assembler.Component]:
        return [assembler.Component("http.route", "tag", config_schema={"type": "object"})]


def _plugins() -> assembler.Plugins:
    installed = assembler.load_plugins()
    if "http.route" in installed.components:
        return installed  # the real http plugin
    return assembler.load_plugins(extra=[_RouteTagStub()])


def test_from_a_manifest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        assemble: 1
        id: users_api
        middleware:
          jwt:
            use: auth.jwt
            config: {secret: s3cret-s3cret-s3cret-s3cret-s3cret!, algorithms: [HS256]}
        tasks:
          get_user:
            description: Get a user
            run: users:get_user
            middleware: [jwt, {use: timeout, config: {after: 2s}}]
            tags: {http.route: {method: GET, path: "/users/{id}"}}
            input_schema: {type: object, required: [id], properties: {id: {type: string}}}
            result_schema: {type: object, properties: {id: {type: string}}}
          create_user:
            run: users:create_user
            middleware: [{use: rate_limit, config: {max_requests: 10, window: 1s}}]
            tags: {http.route: {method: POST, path: /users, status: 201}}
            input_schema: {type: object, required: [name], properties: {name: {type: string}}}
        """,
        users="""
        def get_user(input):
            return {"id": input["id"]}

        def create_user(input):
            return {"id": "1", "name": input["name"]}
        """,
    )
    checked = assembler.check(str(path), _plugins())
    assert checked.ok, [d.message for d in checked.diagnostics]
    assert checked.app is not None
    d = openapi_document(runner.Store.build(checked.app), title="Users", version="1")
    OpenAPIV31SpecValidator(d).validate()
    get = d["paths"]["/users/{id}"]["get"]
    assert get["summary"] == "Get a user"
    assert get["security"] == [{"bearerAuth": []}]
    assert {"401", "504"} <= set(get["responses"])
    post = d["paths"]["/users"]["post"]
    assert "security" not in post
    assert {"201", "413", "429"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["schema"]["required"] == ["name"]
    assert copy.deepcopy(d) == d


def test_a_redis_rate_limit_from_a_manifest_documents_503(tmp_path: Path) -> None:
    """Compiled from a manifest, a component's config is its typed object: the 503 of
    a Redis-backed limiter is still documented (read from either form)."""
    path = write(
        tmp_path,
        """
        assemble: 1
        id: limited
        resources:
          redis: {use: redis.client}
        tasks:
          create:
            run: users:create
            middleware:
              - {use: rate_limit, config: {max_requests: 10, window: 1s, backend: redis}}
            tags: {http.route: {method: POST, path: /things, status: 201}}
          read:
            run: users:create
            middleware: [{use: rate_limit, config: {max_requests: 10, window: 1s}}]
            tags: {http.route: {method: GET, path: /things}}
        """,
        users="""
        def create(input):
            return {"id": "1"}
        """,
    )
    checked = assembler.check(str(path), _plugins())
    assert checked.ok, [d.message for d in checked.diagnostics]
    assert checked.app is not None
    d = openapi_document(runner.Store.build(checked.app), title="Limited", version="1")
    assert {"429", "503"} <= set(d["paths"]["/things"]["post"]["responses"])
    assert "503" not in d["paths"]["/things"]["get"]["responses"]  # the memory backend


_FAKE_DOM = r"""
function Node(tag) { this.tag = tag; this.children = []; this._text = ""; this.className = ""; }
Object.defineProperty(Node.prototype, "textContent", {
  get: function () {
    return [this._text].concat(this.children.map(function (c) { return c.textContent; }))
      .join("\n");
  },
  set: function (v) { this._text = String(v); this.children = []; }
});
Node.prototype.appendChild = function (c) { this.children.push(c); return c; };
Object.defineProperty(Node.prototype, "firstChild", {
  get: function () { return this.children[0] || null; }
});
var ids = {"spec-link": new Node("a"), "ops": new Node("div"), "error": new Node("p")};
global.document = {
  getElementById: function (i) { return ids[i]; },
  createElement: function (t) { return new Node(t); }
};
var RESPONSE = __RESPONSE__;
global.fetch = function (u) {
  return Promise.resolve({ok: RESPONSE.ok, status: RESPONSE.status,
                          json: function () { return Promise.resolve(RESPONSE.body); }});
};
process.on("exit", function () {
  console.log(JSON.stringify({ops: ids.ops.textContent, error: ids.error.textContent,
                              href: ids["spec-link"].href}));
});
"""


def _render_in_node(tmp_path: Path, response: dict[str, Any]) -> dict[str, str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the docs page's script is not run")
    match = re.search(r"<script>(.*)</script>", docs_page("/openapi.json", "Users"), re.S)
    assert match is not None
    script = tmp_path / "page.js"
    script.write_text(_FAKE_DOM.replace("__RESPONSE__", json.dumps(response)) + match.group(1))
    done = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_docs_page_script_renders_every_operation(tmp_path: Path) -> None:
    shown = _render_in_node(tmp_path, {"ok": True, "status": 200, "body": doc(*realistic())})
    assert shown["error"] == ""
    assert shown["href"] == "/openapi.json"
    text = shown["ops"]
    for piece in (
        "get_user",
        "/users/{id}",
        "requires bearerAuth",
        "Get one user.",
        "Returns 404 when there is none.",
        '"minLength": 1',  # the request body schema, pretty-printed
        "Request body (application/json)",
        "429 Rate limit exceeded",
        "204 Success",
    ):
        assert piece in text, piece
    assert text.index("/health") < text.index("/users\n") < text.index("/users/{id}")


def test_docs_page_script_reports_a_failed_fetch(tmp_path: Path) -> None:
    shown = _render_in_node(tmp_path, {"ok": False, "status": 503, "body": None})
    assert shown["error"] == "Could not load /openapi.json: HTTP 503"
