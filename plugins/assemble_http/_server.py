"""``http.server``: serve every task tagged ``http.route`` with Starlette on uvicorn.

The listening socket is bound in ``init`` (a taken port fails startup, naming
host:port); requests are answered once the whole app is up (``rt.wait_running()``).
On shutdown the server stops accepting at once (``rt.wait_stopping()``), lets the
requests in flight finish within ``shutdown_grace``, then its disposal returns.
uvicorn and Starlette run on asyncio only: on trio, init fails with a clear error.
"""

from __future__ import annotations

import errno
import functools
import importlib
import json
import logging
import math
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

import assembler
import runner
from runner.errors import RunnerError

from ._routes import PARAM, BadRequest, merge, parse_body, property_types

if TYPE_CHECKING:
    from starlette.responses import Response

log = logging.getLogger("assemble.http")

MIB = 1024 * 1024
DEFAULT_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DEFAULT_HEADERS = ["authorization", "content-type", "x-request-id"]
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
GENERIC_500 = "internal server error"
_METHOD_RANK = {m: i for i, m in enumerate(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"))}

_ORIGINS = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "host": {
            "type": "string",
            "minLength": 1,
            "default": "127.0.0.1",
            "description": "the address to listen on (`0.0.0.0` for every IPv4 interface)",
        },
        "port": {
            "type": "integer",
            "minimum": 0,
            "maximum": 65535,
            "default": 8080,
            "description": "the TCP port; 0 picks a free one (read it from the resource's `port`)",
        },
        "max_body_bytes": {
            "type": "integer",
            "minimum": 1,
            "default": MIB,
            "description": "the largest request body accepted (bytes); bigger: 413, also "
            "for chunked bodies, before the whole body is read",
        },
        "cors": {
            "type": "object",
            "properties": {
                "allow_origins": {
                    **_ORIGINS,
                    "description": "origins allowed to call (`https://app.example.com`), "
                    'or `"*"` for any (not with credentials)',
                },
                "allow_credentials": {
                    "type": "boolean",
                    "default": False,
                    "description": "let browsers send cookies and Authorization",
                },
                "allow_methods": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": DEFAULT_METHODS,
                    "description": "methods a cross-origin request may use",
                },
                "allow_headers": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": DEFAULT_HEADERS,
                    "description": "request headers a cross-origin request may send",
                },
            },
            "required": ["allow_origins"],
            "additionalProperties": False,
            "description": "CORS, off when absent: `allow_origins` (required), "
            "`allow_credentials` (false), `allow_methods`, `allow_headers`",
        },
        "shutdown_grace": {
            **assembler.DURATION,
            "default": "15s",
            "description": "how long requests in flight may take to finish once shutdown "
            "starts; past it they are cancelled",
        },
        "openapi": {
            "type": "boolean",
            "default": True,
            "description": "serve the OpenAPI 3.1 document at `/openapi.json` and a docs "
            "page at `/docs`",
        },
    },
    "additionalProperties": False,
}


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
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        report(
            "http.server needs Starlette and uvicorn, which are not installed",
            hint='install assemble[http] (pip install "assemble[http]")',
        )
    cors = (config or {}).get("cors")
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


# -- responses ---------------------------------------------------------------------


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":"))


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


def failure(exc: Exception, request_id: str, what: str, task: str = "") -> Response:
    """The response for a task's exception: its status and message, or a generic 500.

    A validation error is the caller's (422) only when it is about the input the caller
    sent to this route's task: a result that fails its schema, or a nested task called
    with a bad input, is the server's fault and gets the generic 500 (details logged).
    """
    status = getattr(exc, "http_status", None)
    if isinstance(exc, runner.errors.ValidationError) and (
        exc.what != "input" or exc.owner != task
    ):
        status = None
    # Only RunnerError subclasses are typed: a third-party exception that happens to
    # carry `code` and `http_status` (a payment library's) must not reach the caller.
    if isinstance(exc, RunnerError) and isinstance(status, int) and status != 500:
        code, message = exc.code, exc.message
        headers: dict[str, str] = {}
        retry = getattr(exc, "retry_after", None)
        if status in (429, 503) and isinstance(retry, int | float) and math.isfinite(retry):
            headers["Retry-After"] = str(max(0, math.ceil(retry)))
        extra: dict[str, Any] = {}
        if isinstance(exc, runner.errors.ValidationError):
            extra["fields"] = [{"field": e.field, "message": e.message} for e in exc.errors]
        if status >= 500:
            log.warning(
                "%s failed (request %s): %s: %s",
                what,
                request_id,
                type(exc).__name__,
                message,
                extra={"request_id": request_id},
            )
        return error_response(status, code, message, request_id, headers, **extra)
    log.error(
        "%s failed (request %s) with an unexpected %s",
        what,
        request_id,
        type(exc).__name__,
        exc_info=exc,
        extra={"request_id": request_id},
    )
    return error_response(500, "http.internal", GENERIC_500, request_id)


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


def build_app(rt: runner.Runtime, config: dict[str, Any]) -> Any:
    """The Starlette app: the routes of the store's ``http.route`` tasks, health, OpenAPI."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Match, Route

    limit = int(config.get("max_body_bytes", MIB))
    grace = assembler.duration(config.get("shutdown_grace", "15s"))

    def endpoint(task: runner.Task, method: str, path: str, status: int) -> Any:
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
            except Exception as exc:  # ShuttingDown: it arrived after shutdown began
                return failure(exc, rid, what, task.id)
            except anyio.get_cancelled_exc_class():
                if not rt.shutting_down:
                    raise
            # uvicorn cancelled it: it outlived shutdown_grace. The connection is still
            # open: the caller gets an answer, the log names what was cut off.
            cancelled_past_grace(what, rid, grace)
            return error_response(503, *past_grace(grace), rid)

        async def handle_accepted(request: Request, rid: str) -> Response:
            try:
                raw = await read_body(request, limit) if method != "GET" else b""
                body = parse_body(raw)
            except BadRequest as bad:
                close = {"connection": "close"} if bad.close else None
                return error_response(bad.status, bad.code, bad.message, rid, close)
            except ClientDisconnect:  # gone mid-upload: nobody to answer, nothing to log
                return Response(status_code=400)
            query = request.query_params.multi_items() if request.scope["query_string"] else ()
            data = merge(schema, request.path_params, query, body, types)
            headers = dict(request.headers)  # ASGI header names are lower-case already
            try:
                with runner.current_request.provide(runner.Request(rid, headers, "http")):
                    result = await run(task.id, data)
                if status == 204:
                    return Response(status_code=204)
                return Response(_json(result), status, media_type="application/json")
            except Exception as exc:
                return failure(exc, rid, what, task.id)

        return handle

    routes: list[Any] = []
    tagged = rt.store.tasks_with_tag("http.route")
    for item in sorted(tagged, key=lambda t: _route_order(str(t.config.get("path", "/")))):
        cfg = item.config or {}
        method, path = str(cfg["method"]).upper(), str(cfg["path"])
        handler = endpoint(item.definition, method, path, int(cfg.get("status", 200)))
        routes.append(Route(path, handler, methods=[method]))

    async def healthz(request: Request) -> Response:
        return Response(_json({"status": "ok"}), media_type="application/json")

    async def readyz(request: Request) -> Response:
        ready = rt.state == "running"
        body = {"status": "ready" if ready else rt.state}
        return Response(_json(body), 200 if ready else 503, media_type="application/json")

    builtins = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz)]
    if config.get("openapi", True):
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
                return error_response(
                    404, "http.not_found", "no such path", _request_id(request.scope)
                )
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
                return error_response(
                    404, "http.not_found", "no such path", _request_id(request.scope)
                )
            return HTMLResponse(module.docs_page("/openapi.json", title))

        builtins += [Route("/openapi.json", openapi), Route("/docs", docs)]

    def allowed_methods(request: Request) -> list[str]:
        """Every method some route serves at this path (Starlette's 405 names only the
        first route that matched the path, though several may share it)."""
        methods: set[str] = set()
        for route in request.app.router.routes:
            match, _ = route.matches({**request.scope, "method": "\x00"})
            if match is not Match.NONE and isinstance(route, Route):
                methods.update(route.methods or ())
        return sorted(methods, key=lambda m: (_METHOD_RANK.get(m, len(_METHOD_RANK)), m))

    async def http_error(request: Request, exc: Exception) -> Response:
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
            return error_response(404, "http.not_found", "no such path", rid)
        return error_response(exc.status_code, "http.error", str(exc.detail), rid)

    middleware = [Middleware(RequestIds)]
    cors = config.get("cors")
    if isinstance(cors, dict):
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors["allow_origins"]),
                allow_credentials=bool(cors.get("allow_credentials", False)),
                allow_methods=list(cors.get("allow_methods", DEFAULT_METHODS)),
                allow_headers=list(cors.get("allow_headers", DEFAULT_HEADERS)),
                expose_headers=["x-request-id"],
            )
        )
    return Starlette(
        routes=[*builtins, *routes],
        middleware=middleware,
        exception_handlers={HTTPException: http_error},
    )


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


def _json_400_protocol() -> Any:
    """uvicorn's HTTP/1.1 protocol, answering a request it cannot parse (a malformed
    header, a bad Content-Length) with the JSON error envelope instead of plain text."""
    from uvicorn.importer import import_from_string

    base = import_from_string("uvicorn.protocols.http.auto:AutoHTTPProtocol")
    if not callable(getattr(base, "send_400_response", None)):  # pragma: no cover
        return "auto"

    class Json400(base):  # type: ignore[misc, valid-type]
        def send_400_response(self, msg: str) -> None:
            rid = uuid.uuid4().hex
            message = "the request is not valid HTTP/1.1"
            body = _json(
                {"error": {"code": "http.bad_request", "message": message, "request_id": rid}}
            )
            head = (
                "HTTP/1.1 400 Bad Request\r\n"
                "content-type: application/json\r\n"
                f"content-length: {len(body)}\r\n"
                f"x-request-id: {rid}\r\n"
                "connection: close\r\n\r\n"
            )
            self.transport.write(head.encode("ascii") + body)
            self.transport.close()

    return Json400


def _uvicorn_server(app: Any, grace: float) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the app's runner handles SIGINT/SIGTERM and tells us to stop

    config = uvicorn.Config(
        app,
        http=_json_400_protocol(),
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, math.ceil(grace)),
    )
    return Server(config)


def require_asyncio(what: str) -> None:
    """:class:`HttpServerError` unless running on asyncio (uvicorn's only backend)."""
    assembler.require_asyncio(HttpServerError, what, "uvicorn and Starlette run on asyncio only")


@asynccontextmanager
async def serving(
    rt: runner.Runtime, app: Any, sock: socket.socket, grace: float, what: str
) -> AsyncIterator[None]:
    """Serve ``app`` on ``sock`` in the background once ``rt`` runs; stop accepting when
    it stops; on exit, let requests in flight finish within ``grace``.

    The body of the ``async with`` is the resource's life (``yield`` its value there)."""
    try:
        server = _uvicorn_server(app, grace)
    except BaseException:
        sock.close()
        raise
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

    async def stop_when_stopping() -> None:
        await rt.wait_stopping()
        server.should_exit = True  # stop accepting now; requests in flight finish

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_server)
        tg.start_soon(stop_when_stopping)
        try:
            yield
        finally:
            server.should_exit = True
            if not started:  # startup failed or was cancelled: never served
                tg.cancel_scope.cancel()


async def serve(config: dict[str, Any] | None) -> AsyncIterator[HttpServer]:
    """Init: bind, then serve in the background once the app runs; dispose: drain, stop."""
    config = dict(config or {})
    require_asyncio("http.server")
    rt = runner.current_runtime.use()
    host, port = str(config.get("host", "127.0.0.1")), int(config.get("port", 8080))
    grace = assembler.duration(config.get("shutdown_grace", "15s"))
    rt.extend_drain(grace)  # the runtime waits for the requests as long as uvicorn does
    sock = bind(host, port)
    try:
        app = build_app(rt, config)
    except BaseException:
        sock.close()
        raise
    value = HttpServer(host, sock.getsockname()[1])
    async with serving(rt, app, sock, grace, f"http.server on {value.url}"):
        yield value


def components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="http.server",
            kind="resource",
            config_schema=SCHEMA,
            init=serve,
            check=check,
            description="serves the tasks tagged http.route over HTTP (Starlette, uvicorn)",
        )
    ]
