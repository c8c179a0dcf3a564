"""``http.server``: serve every task tagged ``http.route`` with Starlette on uvicorn.

The listening socket is bound in ``init`` (a taken port fails startup, naming
host:port); requests are answered once the whole app is up (``rt.wait_running()``).
On shutdown the server stops accepting at once (``rt.wait_stopping()``), lets the
requests in flight finish within ``shutdown_grace``, then its disposal returns.
uvicorn and Starlette run on asyncio only: on trio, init fails with a clear error.
The connection layer (timeouts, the connection limit, the drain) is in ``_protocol``.
"""

from __future__ import annotations

import errno
import functools
import importlib
import ipaddress
import json
import logging
import math
import os
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio

import assembler
import runner
from runner.errors import HookError, RunnerError, ValidationError

from ._protocol import DRAIN_LINGER, Edge, EdgeLimits, edge_server
from ._routes import (
    PARAM,
    BadRequest,
    RouteConfig,
    is_json_media_type,
    merge,
    parse_json,
    property_types,
    unsupported_media_type,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger("assemble.http")

MIB = 1024 * 1024
DEFAULT_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DEFAULT_HEADERS = ["authorization", "content-type", "x-request-id"]
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
GENERIC_500 = "internal server error"
_METHOD_RANK = {m: i for i, m in enumerate(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"))}

#: Bounds on what an error body echoes (a 1 MB field name or value must not come back):
#: the message, each field's name and each field's message, in characters.
MAX_MESSAGE, MAX_FIELD_NAME, MAX_FIELD_MESSAGE = 600, 128, 200
MAX_FIELDS = 20  # the runtime reports no more either (runner's MAX_FIELD_ERRORS)
#: The integers the boundary rule admits (signed 64-bit): the fast check of URL values.
_MIN_INT, _MAX_INT = -(2**63), 2**63 - 1

_NONEMPTY = {"type": "array", "items": {"type": "string", "minLength": 1}}


@dataclass(frozen=True, kw_only=True)
class CorsConfig:
    """``http.server``'s ``cors``."""

    allow_origins: list[str] = assembler.option(
        doc="origins allowed to call (`https://app.example.com`), "
        'or `"*"` for any (not with credentials)',
        schema=_NONEMPTY,
        minItems=1,
    )
    allow_credentials: bool = assembler.option(
        False, doc="let browsers send cookies and Authorization"
    )
    allow_methods: list[str] = assembler.option(
        DEFAULT_METHODS, doc="methods a cross-origin request may use"
    )
    allow_headers: list[str] = assembler.option(
        DEFAULT_HEADERS, doc="request headers a cross-origin request may send"
    )


@dataclass(frozen=True, kw_only=True)
class HttpServerConfig:
    """``http.server``'s config."""

    host: str = assembler.option(
        "127.0.0.1",
        doc="the address to listen on (`0.0.0.0` for every IPv4 interface)",
        minLength=1,
    )
    port: int = assembler.option(
        8080,
        doc="the TCP port; 0 picks a free one (read it from the resource's `port`)",
        minimum=0,
        maximum=65535,
    )
    max_body_bytes: int = assembler.option(
        MIB,
        doc="the largest request body accepted (bytes); bigger: 413, also "
        "for chunked bodies, before the whole body is read",
        minimum=1,
    )
    cors: CorsConfig | None = assembler.option(
        None,
        doc="CORS, off when absent: `allow_origins` (required), "
        "`allow_credentials` (false), `allow_methods`, `allow_headers`",
    )
    shutdown_grace: assembler.Duration = assembler.option(
        "15s",
        doc="how long requests in flight may take to finish once shutdown "
        "starts; past it they are cancelled",
    )
    openapi: bool = assembler.option(
        True, doc="serve the OpenAPI 3.1 document at `/openapi.json` and a docs page at `/docs`"
    )
    header_timeout: assembler.Duration = assembler.option(
        "10s",
        doc="a connection must send a whole request head within this (from "
        "connecting, or from the first byte of a later request); else 408 and closed",
    )
    body_timeout: assembler.Duration = assembler.option(
        "30s",
        doc="a request body must have arrived this long after its head; else 408 and closed",
    )
    keep_alive_timeout: assembler.Duration = assembler.option(
        "5s", doc="an idle kept-alive connection is closed after this"
    )
    write_timeout: assembler.Duration = assembler.option(
        "30s",
        doc="a client must take some of its answer within this, or the "
        "connection is dropped (a client that sends requests and never reads them)",
    )
    max_connections: int = assembler.option(
        1000,
        doc="open connections at most; past it a new one is answered 503 and closed at once",
        minimum=1,
    )
    trusted_proxies: list[str] = assembler.option(
        [],
        doc="addresses or networks (`10.0.0.0/8`) of proxies whose "
        "`X-Forwarded-For` and `X-Forwarded-Proto` are believed; none by default",
        schema=_NONEMPTY,
    )


class HttpServerError(RunnerError):
    """``http.server`` could not start: the port is taken, or the backend is not asyncio."""

    code = "http.server_failed"


@dataclass(frozen=True)
class HttpServer:
    """The value of an ``http.server`` resource: where it listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def check(config: Any, report: assembler.ConfigReport) -> None:
    report.require_library(
        "http.server", ["starlette", "uvicorn"], extra="http", library="Starlette and uvicorn"
    )
    config = config if isinstance(config, dict) else {}
    cors = config.get("cors")
    if (
        isinstance(cors, dict)
        and cors.get("allow_credentials") is True
        and "*" in (cors.get("allow_origins") or ())
    ):
        report(
            'CORS with `allow_credentials: true` cannot allow every origin ("*"): any '
            "site could then make calls with your users' cookies",
            at=("cors", "allow_credentials"),
            hint="list the origins that may call (https://app.example.com), "
            "or set allow_credentials: false",
        )
    _check_limits(config, report)


def _check_limits(config: dict[str, Any], report: assembler.ConfigReport) -> None:
    """Timeouts above zero; trusted proxies that are addresses or networks."""
    for key in ("header_timeout", "body_timeout", "keep_alive_timeout", "write_timeout"):
        try:
            zero = key in config and assembler.duration(config[key]) <= 0
        except ValueError:  # the schema reports it
            continue
        if zero:
            report(f"`{key}` must be more than 0", at=(key,), hint="e.g. 10s")
    proxies = config.get("trusted_proxies")
    for i, proxy in enumerate(proxies if isinstance(proxies, list) else ()):
        try:
            ipaddress.ip_network(str(proxy), strict=False)
        except ValueError:
            report(
                f"{proxy!r} is not an IP address or network",
                at=("trusted_proxies", i),
                hint="write an address (10.0.0.7) or a network (10.0.0.0/8)",
            )


def edge_limits(config: HttpServerConfig) -> EdgeLimits:
    """The connection limits an ``http.server`` config asks for."""
    return EdgeLimits(
        header_timeout=config.header_timeout,
        body_timeout=config.body_timeout,
        keep_alive_timeout=config.keep_alive_timeout,
        write_timeout=config.write_timeout,
        max_connections=config.max_connections,
        trusted_proxies=tuple(config.trusted_proxies),
    )


# -- responses ---------------------------------------------------------------------


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":"))
#: The server's failure log where a caller passes none (one per server otherwise).
_FAILURES = assembler.FailureLog(log)


def _json(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    from starlette.responses import Response

    body = {"error": {"code": code, "message": message, "request_id": request_id, **extra}}
    return Response(_json(body), status, headers, media_type="application/json")


def _request_id(scope: Any) -> str:
    state = scope.get("state")
    rid = state.get("request_id") if isinstance(state, dict) else None
    return rid if isinstance(rid, str) else ""


def _cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` - 1 characters and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _answerable(exc: Exception, task: str) -> RunnerError | None:
    """The error whose status and message the caller may see, or ``None`` (a 500).

    Only RunnerError subclasses are typed: a third-party exception that happens to
    carry ``code`` and ``http_status`` (a payment library's) must not reach the caller,
    not even as the cause of a failed hook. A validation error is the caller's (422)
    only when it is about the input the caller sent to this route's task."""
    while isinstance(exc, HookError):  # answered as its cause (a 503, a 409 ...)
        cause = exc.__cause__
        if not isinstance(cause, Exception):
            return None
        exc = cause
    status = getattr(exc, "http_status", None)
    if not isinstance(exc, RunnerError) or not isinstance(status, int) or status == 500:
        return None
    if isinstance(exc, ValidationError) and (exc.what != "input" or exc.owner != task):
        return None  # a bad result, a nested task's bad input: the server's fault
    return exc


def failure(
    exc: Exception,
    request_id: str,
    what: str,
    task: str = "",
    failures: assembler.FailureLog | None = None,
) -> Response:
    """The response for a task's exception: its status and message, or a generic 500.

    Answers of 500 and more go to ``failures`` (the server's :class:`FailureLog`): the
    first of a kind in full (a classified error's ``detail``, an unexpected error's
    traceback), then a count per interval. The body never has more than the error's
    code and message (``detail`` stays in the log)."""
    typed = _answerable(exc, task)
    if typed is None:
        (failures or _FAILURES).failed(what, request_id, exc)
        return error_response(500, "http.internal", GENERIC_500, request_id)
    status = int(typed.http_status or 500)
    if status >= 500:  # logged as answered (a hook's cause: its code groups an outage)
        (failures or _FAILURES).failed(what, request_id, typed)
    headers: dict[str, str] = {}
    retry = getattr(typed, "retry_after", None)
    if status in (429, 503) and isinstance(retry, int | float) and math.isfinite(retry):
        headers["Retry-After"] = str(max(0, math.ceil(retry)))
    extra: dict[str, Any] = {}
    if isinstance(typed, ValidationError):
        extra["fields"] = [
            {
                "field": _cut(e.field, MAX_FIELD_NAME),
                "message": _cut(e.message, MAX_FIELD_MESSAGE),
            }
            for e in typed.errors[:MAX_FIELDS]
        ]
    message = _cut(typed.message, MAX_MESSAGE)
    return error_response(status, typed.code, message, request_id, headers, **extra)


# -- the ASGI app ------------------------------------------------------------------


class RequestIds:
    """Outermost middleware: take a valid ``X-Request-ID`` or make one; echo it back."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if given is not None and REQUEST_ID.match(given) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0] != b"x-request-id"]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        await self.app(scope, receive, send_with_id)


#: How long, and how many bytes past the limit, the rest of a refused body is read and
#: dropped, so that a client still sending it gets its 413 (closing at once would reset
#: the connection under it). Past either bound the connection is closed instead.
DRAIN_SECONDS = 2.0
DRAIN_MIN_BYTES = 64 * 1024


async def read_body(request: Any, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed ``limit`` bytes."""
    length = request.headers.get("content-length")
    budget = max(limit, DRAIN_MIN_BYTES)
    if length is not None:
        if not length.isdigit():
            raise BadRequest(400, "http.bad_request", "the Content-Length header is invalid")
        if int(length) > limit:
            # uvicorn reads a declared body to its end: too long to wait for, close
            raise _too_large(limit, close=int(length) > limit + budget)
    chunks, size = [], 0
    stream = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, close=not await drain(stream, budget))
        chunks.append(chunk)
    return b"".join(chunks)


async def drain(stream: AsyncIterator[bytes], budget: int) -> bool:
    """Read and drop the rest of a refused body; ``False`` if it did not end within
    :data:`DRAIN_SECONDS` and ``budget`` bytes (the connection must then be closed)."""
    with anyio.move_on_after(DRAIN_SECONDS):
        async for chunk in stream:
            budget -= len(chunk)
            if budget < 0:
                return False
        return True
    return False


def _too_large(limit: int, *, close: bool = False) -> BadRequest:
    bad = BadRequest(413, "http.body_too_large", f"the body is larger than {limit} bytes")
    bad.close = close
    return bad


def _route_order(path: str) -> tuple[int, int]:
    """Literal paths before parametrised ones (`/users/me` before `/users/{id}`)."""
    return (len(PARAM.findall(path)), -path.count("/"))


def cancelled_past_grace(
    what: str, request_id: str, grace: float, logger: logging.Logger = log
) -> None:
    """Report a request cancelled because it outlived the shutdown grace."""
    logger.warning(
        "%s (request %s) was cancelled: still running when shutdown_grace (%gs) ran out",
        what,
        request_id,
        grace,
        extra={"request_id": request_id},
    )


def past_grace(grace: float) -> tuple[str, str]:
    """``(code, message)`` of the answer to a request cancelled past the grace."""
    return (
        "runner.shutting_down",
        f"the request was cancelled: still running when shutdown_grace ({grace:g}s) ran out",
    )


# -- a request becomes an input ----------------------------------------------------


def _plain(value: Any) -> bool:
    """True when ``value`` (from a URL) surely crosses the boundary: ASCII text without
    NUL, a 64-bit integer, a finite number. Anything else is for the full check."""
    kind = type(value)
    if kind is str:
        return bool(value.isascii()) and "\x00" not in value
    if kind is int:
        return bool(_MIN_INT <= value <= _MAX_INT)
    if kind is float:
        return math.isfinite(value)
    return kind is bool or value is None


def check_input(data: dict[str, Any], url_keys: Iterable[str], walk_all: bool, owner: str) -> None:
    """The boundary rule on the merged input: every value from the URL (percent-decoding
    can give a NUL; an integer may not fit), and the body's only when ``walk_all`` (it
    may hold a ``\\u`` escape or a long integer). :class:`ValidationError` (422)."""
    if walk_all:
        runner.check_boundary(data, what="input", owner=owner)
        return
    for key in url_keys:
        if not (_plain(key) and _plain(data.get(key))):
            url = {k: data[k] for k in url_keys if k in data}
            runner.check_boundary(url, what="input", owner=owner)
            return


async def request_input(
    request: Request,
    schema: Any,
    limit: int,
    types: Callable[[str], set[str]],
    owner: str,
) -> dict[str, Any]:
    """The task's input: the body (JSON only, 415 otherwise), the query, the path,
    merged and checked against the boundary rule (see :func:`check_input`)."""
    raw = await read_body(request, limit) if request.method not in ("GET", "HEAD") else b""
    if raw and not is_json_media_type(request.headers.get("content-type")):
        raise unsupported_media_type()
    body, suspicious = parse_json(raw)
    query = request.query_params.multi_items() if request.scope["query_string"] else ()
    data = merge(schema, request.path_params, query, body, types)
    url_keys = [*request.path_params, *(k for k, _ in query)]
    check_input(data, url_keys, suspicious, owner)
    return data


@dataclass(frozen=True)
class _Serving:
    """What every route of one server shares."""

    rt: runner.Runtime
    limit: int
    grace: float
    failures: assembler.FailureLog


def _endpoint(on: _Serving, task: runner.Task, method: str, path: str, status: int) -> Any:
    """The Starlette endpoint of ``task`` at ``method`` ``path``."""
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response

    rt, grace, failures = on.rt, on.grace, on.failures
    schema = getattr(task.input_schema, "schema", None)
    what = f"{method} {path} (task {task.id!r})"
    run = rt.run_task
    types = functools.cache(partial(property_types, schema))  # per input key

    async def handle(request: Request) -> Response:
        rid = _request_id(request.scope)
        try:
            # accepted now, so shutdown waits for it even while its body is read
            async with rt.accepted(f"{method} {path}"):
                return await handle_accepted(request, rid)
        except Exception as exc:  # ShuttingDown, the boundary's 422, the task's error
            return failure(exc, rid, what, task.id, failures)
        except anyio.get_cancelled_exc_class():
            if not rt.shutting_down:
                raise
        # uvicorn cancelled it: it outlived shutdown_grace. The connection is still
        # open: the caller gets an answer, the log names what was cut off.
        cancelled_past_grace(what, rid, grace)
        return error_response(503, *past_grace(grace), rid)

    async def handle_accepted(request: Request, rid: str) -> Response:
        try:
            data = await request_input(request, schema, on.limit, types, task.id)
        except BadRequest as bad:
            close = {"connection": "close"} if bad.close else None
            return error_response(bad.status, bad.code, bad.message, rid, close)
        except ClientDisconnect:  # gone mid-upload: nobody to answer, nothing to log
            return Response(status_code=400)
        peer = request.scope.get("client")
        who = runner.Request(rid, dict(request.headers), "http", peer[0] if peer else "")
        with runner.current_request.provide(who):
            result = await run(task.id, data)
        if status == 204:
            return Response(status_code=204)
        return Response(_json(result), status, media_type="application/json")

    return handle


# -- built-in routes, errors -------------------------------------------------------


def _builtin_routes(rt: runner.Runtime, config: HttpServerConfig) -> list[Any]:
    """``/healthz``, ``/readyz``, and (``openapi: true``) ``/openapi.json`` and ``/docs``."""
    from starlette.responses import Response
    from starlette.routing import Route

    async def healthz(request: Request) -> Response:
        return Response(_json({"status": "ok"}), media_type="application/json")

    async def readyz(request: Request) -> Response:
        ready = rt.state == "running"
        body = {"status": "ready" if ready else rt.state}
        return Response(_json(body), 200 if ready else 503, media_type="application/json")

    builtins = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz)]
    if config.openapi:
        builtins += _openapi_routes(rt)
    return builtins


def _openapi_routes(rt: runner.Runtime) -> list[Any]:
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    cached: list[bytes] = []
    root = rt.store.root
    title = str(root.meta.get("title") or root.id)

    def openapi_module() -> Any:
        try:
            return importlib.import_module(f"{__package__}._openapi")
        except ImportError:
            return None

    async def openapi(request: Request) -> Response:
        module = openapi_module()
        if module is None:
            return error_response(404, "http.not_found", "no such path", _request_id(request.scope))
        if not cached:
            doc = module.openapi_document(
                rt.store,
                title=title,
                version=str(root.meta.get("version") or "1.0.0"),
                description=root.meta.get("description"),
            )
            cached.append(_json(doc))
        return Response(cached[0], media_type="application/json")

    async def docs(request: Request) -> Response:
        module = openapi_module()
        if module is None:
            return error_response(404, "http.not_found", "no such path", _request_id(request.scope))
        return HTMLResponse(module.docs_page("/openapi.json", title))

    return [Route("/openapi.json", openapi), Route("/docs", docs)]


def _matching(request: Request, scope: dict[str, Any]) -> list[Any]:
    """The routes that match ``scope``'s path (with any method)."""
    from starlette.routing import Match, Route

    return [
        route
        for route in request.app.router.routes
        if isinstance(route, Route) and route.matches(scope)[0] is not Match.NONE
    ]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the
    first route that matched the path, though several may share it)."""
    methods: set[str] = set()
    for route in _matching(request, {**request.scope, "method": "\x00"}):
        methods.update(route.methods or ())
    return sorted(methods, key=lambda m: (_METHOD_RANK.get(m, len(_METHOD_RANK)), m))


def slash_redirect(request: Request) -> Response | None:
    """A 307 to the path with its trailing slash added or removed, if a route serves it.

    The ``Location`` is relative (the path and the query as sent): Starlette's own
    redirect (switched off) writes an absolute URL built from the ``Host`` header, which
    the caller chooses (``Location: http://evil.example.com/users``). No redirect to a
    path a browser would read as another host (``//host``, ``/\\host``)."""
    from starlette.responses import Response

    path = request.scope["path"]
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    if not other.startswith("/") or other.startswith(("//", "/\\")):
        return None
    if not _matching(request, {**request.scope, "path": other}):
        return None
    location = quote(other, safe="/:@!$&'()*+,;=-._~")
    query = request.scope.get("query_string") or b""
    if query:
        location += "?" + query.decode("latin-1")
    return Response(status_code=307, headers={"location": location})


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (404, 405, ...) in the JSON envelope."""
    from starlette.exceptions import HTTPException

    assert isinstance(exc, HTTPException)
    rid = _request_id(request.scope)
    if exc.status_code == 405:
        return error_response(
            405,
            "http.method_not_allowed",
            f"{request.method} is not allowed here",
            rid,
            {"Allow": ", ".join(allowed_methods(request))},
        )
    if exc.status_code == 404:
        return slash_redirect(request) or error_response(404, "http.not_found", "no such path", rid)
    return error_response(exc.status_code, "http.error", str(exc.detail), rid)


def _middleware(config: HttpServerConfig) -> list[Any]:
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware

    middleware = [Middleware(RequestIds)]
    cors = config.cors
    if cors is not None:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors.allow_origins),
                allow_credentials=cors.allow_credentials,
                allow_methods=list(cors.allow_methods),
                allow_headers=list(cors.allow_headers),
                expose_headers=["x-request-id"],
            )
        )
    return middleware


def build_app(
    rt: runner.Runtime,
    config: HttpServerConfig | Mapping[str, Any],
    *,
    failures: assembler.FailureLog | None = None,
) -> Any:
    """The Starlette app: the routes of the store's ``http.route`` tasks, health, OpenAPI.

    Answers of 500 and more are logged through ``failures`` (one per server)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    config = assembler.from_config(HttpServerConfig, config)
    on = _Serving(
        rt,
        limit=config.max_body_bytes,
        grace=config.shutdown_grace,
        failures=failures or assembler.FailureLog(log),
    )
    routes: list[Any] = []
    tagged = rt.store.tasks_with_tag("http.route")
    declared = [(assembler.from_config(RouteConfig, t.config), t.definition) for t in tagged]
    for route, task in sorted(declared, key=lambda d: _route_order(d[0].path)):
        method = route.method.upper()
        handler = _endpoint(on, task, method, route.path, route.status)
        routes.append(Route(route.path, handler, methods=[method]))
    app = Starlette(
        routes=[*_builtin_routes(rt, config), *routes],
        middleware=_middleware(config),
        exception_handlers={HTTPException: http_error},
    )
    app.router.redirect_slashes = False  # ours is relative: slash_redirect()
    return app


# -- the resource ------------------------------------------------------------------


def bind(host: str, port: int, what: str = "http.server") -> socket.socket:
    """A listening, non-blocking socket on host:port; :class:`HttpServerError` if taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise HttpServerError(
            f"{what} cannot listen on {host}:{port}: {exc}",
            hint="set `host` to an address of this machine (127.0.0.1, 0.0.0.0, ::1)",
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        taken = exc.errno == errno.EADDRINUSE
        raise HttpServerError(
            f"{what} cannot listen on {host}:{port}: {reason}",
            hint="another process may hold the port: stop it, or set `port` (0 picks a free one)"
            if taken
            else "set `host` to an address of this machine (127.0.0.1, 0.0.0.0 or ::)",
        ) from None
    return sock


def require_asyncio(what: str) -> None:
    """:class:`HttpServerError` unless running on asyncio (uvicorn's only backend)."""
    assembler.require_asyncio(HttpServerError, what, "uvicorn and Starlette run on asyncio only")


@asynccontextmanager
async def serving(
    rt: runner.Runtime,
    app: Any,
    sock: socket.socket,
    grace: float,
    what: str,
    *,
    limits: EdgeLimits | None = None,
    failures: assembler.FailureLog | None = None,
) -> AsyncIterator[None]:
    """Serve ``app`` on ``sock`` in the background once ``rt`` runs; stop accepting when
    it stops; on exit, let requests in flight finish within ``grace``.

    ``limits`` bound each connection (defaults: :class:`EdgeLimits`); what the
    connection layer answers itself, it logs through ``failures`` (flushed on exit).
    The body of the ``async with`` is the resource's life (``yield`` its value there)."""
    limits = limits or EdgeLimits()
    failures = failures or assembler.FailureLog(log)
    # an idle connection lingers at shutdown; never most of the grace
    limits = replace(limits, linger=min(limits.linger, DRAIN_LINGER, grace / 2))
    edge = Edge(app, limits, what, failures)
    try:
        server = edge_server(edge, grace)
    except BaseException:
        sock.close()
        raise
    try:
        async with _in_background(rt, server, edge, sock, what):
            yield
    finally:
        failures.flush()


@asynccontextmanager
async def _in_background(
    rt: runner.Runtime, server: Any, edge: Edge, sock: socket.socket, what: str
) -> AsyncIterator[None]:
    """Run ``server`` on ``sock`` from when ``rt`` runs; drain it from when ``rt`` stops
    (or the body exits)."""
    started = False

    async def run_server() -> None:
        nonlocal started
        try:
            await rt.wait_running()
            started = True
            await server.serve(sockets=[sock])
        except Exception as exc:
            # A server that dies must not leave a live process that answers nothing:
            # raising cancels the app's task group, which shuts the app down, and the
            # error comes back out of `runner.run` (exit 1 under `assemble run`).
            raise HttpServerError(
                f"{what} stopped: {type(exc).__name__}: {exc}",
                hint="the app was shut down because it could no longer serve",
            ) from exc
        finally:
            sock.close()

    def stop() -> None:
        edge.draining = True  # from now on every response says Connection: close
        server.should_exit = True  # stop accepting now; requests in flight finish

    async def stop_when_stopping() -> None:
        await rt.wait_stopping()
        stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_server)
        tg.start_soon(stop_when_stopping)
        try:
            yield
        finally:
            stop()
            if not started:  # startup failed or was cancelled: never served
                tg.cancel_scope.cancel()


async def serve(config: HttpServerConfig) -> AsyncIterator[HttpServer]:
    """Init: bind, then serve in the background once the app runs; dispose: drain, stop."""
    require_asyncio("http.server")
    rt = runner.current_runtime.use()
    host, port, grace = config.host, config.port, config.shutdown_grace
    rt.extend_drain(grace)  # the runtime waits for the requests as long as uvicorn does
    sock = bind(host, port)
    failures = assembler.FailureLog(log)
    try:
        app = build_app(rt, config, failures=failures)
    except BaseException:
        sock.close()
        raise
    value = HttpServer(host, sock.getsockname()[1])
    what = f"http.server on {value.url}"
    limits = edge_limits(config)
    async with serving(rt, app, sock, grace, what, limits=limits, failures=failures):
        yield value


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="http.server",
            kind="resource",
            config=HttpServerConfig,
            init=serve,
            check=check,
            description="serves the tasks tagged http.route over HTTP (Starlette, uvicorn)",
        )
    ]
