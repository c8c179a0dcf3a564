"""``tunnel.server``: BlueLibs Runner 5.5's HTTP tunnel protocol (``nodeExposure``).

``POST {base}/task/{id}`` with ``{"input": ...}`` runs the task; ``POST {base}/event/{id}``
with ``{"payload": ...}`` emits the event; ``GET {base}/discovery`` lists what is
exposed. Bodies are in Runner's serializer tree format. Checks, in Runner's order:
method (405), token (401; 500 ``AUTH_NOT_CONFIGURED`` when no token is configured: fail
closed), allow-list (403), existence (404), body (413, 400 ``INVALID_JSON``). Every
answer carries ``x-runner-request-id`` (echoed when valid, else made),
``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

import assembler
import runner
from assemble_http.serving import (
    DRAIN_MIN_BYTES,
    bind,
    cancelled_past_grace,
    drain,
    past_grace,
    require_asyncio,
    serving,
)
from runner.errors import Unauthorized

from ._serializer import SerializerError, loads
from ._wire import (
    IDS,
    MAX_KEY,
    REQUEST_ID,
    REQUEST_ID_HEADER,
    TOKEN_HEADER,
    cut,
    dump_envelope,
    failure,
    failures,
    from_tunnel,
    select,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger("assemble.tunnel")

MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)  # kw_only: a required key may follow defaults
class TunnelServerConfig:
    """``tunnel.server``'s config."""

    host: str = assembler.option("127.0.0.1", doc="the address to listen on", minLength=1)
    port: int = assembler.option(
        doc="the TCP port (required; 0 picks a free one, read it from the resource's `port`)",
        minimum=0,
        maximum=65535,
    )
    base_path: str = assembler.option(
        "/__runner", doc="the path the protocol lives under (Runner's `basePath`)", pattern="^/"
    )
    tokens: list[str] = assembler.option(
        [],
        doc="accepted `x-runner-token` values (several for rotation; "
        "16 or more printable ASCII characters). None: every call is refused",
        schema={
            "type": "array",
            "items": {"type": "string", "minLength": 16, "pattern": "^[\\x21-\\x7e]+$"},
        },
    )
    tasks: list[str] | None = assembler.option(
        None,
        doc="ids or globs (`app.tasks.*`) of the tasks callers may run; any other id: 403",
        schema=IDS,
    )
    events: list[str] | None = assembler.option(
        None, doc="ids or globs of the events callers may emit; any other id: 403", schema=IDS
    )
    max_body_bytes: int = assembler.option(
        2 * MIB, doc="the largest request body accepted (bytes); bigger: 413", minimum=1
    )
    shutdown_grace: assembler.Duration = assembler.option(
        "15s", doc="how long calls in flight may take to finish once shutdown starts"
    )


@dataclass(frozen=True)
class TunnelServer:
    """The value of a ``tunnel.server`` resource: where it listens and what it exposes."""

    host: str
    port: int
    base_path: str
    tasks: tuple[str, ...]
    events: tuple[str, ...]

    @property
    def url(self) -> str:
        """The base URL a client is configured with (Runner's ``baseUrl``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.base_path}"


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        self.status, self.code, self.message, self.close = status, code, message, close


def _too_large(*, close: bool) -> _Refused:
    return _Refused(413, "PAYLOAD_TOO_LARGE", "Payload too large", close=close)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def build_app(rt: runner.Runtime, config: TunnelServerConfig, exposed: TunnelServer) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response
    from starlette.routing import Route

    base = exposed.base_path
    limit, grace = config.max_body_bytes, config.shutdown_grace
    tokens = [_digest(t) for t in config.tokens]
    tasks, events = set(exposed.tasks), set(exposed.events)
    if not tokens:
        log.warning(
            "tunnel.server on %s has no `tokens`: every call is refused (fail closed)",
            exposed.url,
        )

    def respond(status: int, body: dict[str, Any], rid: str, close: bool = False) -> Response:
        content, ok = dump_envelope(body, rid)
        if not ok:
            status = 500
        headers = {
            REQUEST_ID_HEADER: rid,
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
        }
        if close:  # a body left unread: close rather than read (and drop) the rest
            headers["connection"] = "close"
        return Response(
            content, status, headers=headers, media_type="application/json; charset=utf-8"
        )

    def refused(no: _Refused, rid: str) -> Response:
        error = {"message": no.message, "code": no.code}
        return respond(no.status, {"ok": False, "error": error}, rid, no.close)

    def request_id(request: Request) -> str:
        given = request.headers.get(REQUEST_ID_HEADER, "").strip()
        return given if REQUEST_ID.match(given) else str(uuid.uuid4())

    def authenticate(request: Request, rid: str) -> None:
        if not tokens:
            raise _Refused(500, "AUTH_NOT_CONFIGURED", "Authentication not configured.")
        sent = request.headers.getlist(TOKEN_HEADER)
        # exactly one token: of two headers, a proxy and this server might read different ones
        given = _digest(sent[0] if len(sent) == 1 else "")
        ok = False
        for token in tokens:  # every token is compared: the time says nothing
            ok |= hmac.compare_digest(given, token)
        if not ok or len(sent) != 1:
            # once, then a count per interval: a stranger guessing tokens fills no disk
            refused = Unauthorized("refused a call with a wrong or missing x-runner-token")
            failures.failed(f"tunnel.server on {exposed.url}", rid, refused)
            raise _Refused(401, "UNAUTHORIZED", "Unauthorized")

    async def read_json(request: Request) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind.startswith("multipart/") or kind == "application/octet-stream":
            raise _Refused(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"{kind} bodies (files, streams) are not supported: send JSON",
            )
        length = request.headers.get("content-length")
        budget = max(limit, DRAIN_MIN_BYTES)
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(close=int(length) > limit + budget)
        chunks, size = [], 0
        stream = request.stream()
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise _too_large(close=not await drain(stream, budget))
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw:
            return None
        try:
            return loads(raw, cycles=False)  # a cycle: no check nor task could walk it
        except SerializerError:
            raise _Refused(400, "INVALID_JSON", "Invalid JSON body") from None

    def failed(exc: Exception, rid: str, what: str) -> Response:
        return respond(*failure(exc, what, rid), rid)

    def cut_off(rid: str) -> Response:
        code, message = past_grace(grace)
        error = {"code": code, "message": message, "id": code, "data": {}, "httpCode": 503}
        return respond(503, {"ok": False, "error": error}, rid)

    def caller(request: Request, rid: str) -> runner.Request:
        headers = {k: v for k, v in request.headers.items() if k != TOKEN_HEADER}
        return runner.Request(rid, headers, "tunnel")

    def endpoint(
        kind: str, allowed: set[str], work: Callable[[Request, str, Any, str], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """The checks, admission and answers shared by `/task/{id}` and `/event/{id}`;
        ``work(request, id, body, rid)`` returns the envelope to answer with."""
        doing = "call" if kind == "task" else "emit"

        async def handle(request: Request) -> Response:
            rid = request_id(request)
            id = request.path_params["id"]
            try:
                if request.method != "POST":
                    raise _Refused(405, "METHOD_NOT_ALLOWED", "Method Not Allowed")
                authenticate(request, rid)
                if id not in allowed:  # the id as sent, cut short: not a 16 KB echo
                    shown = cut(id, MAX_KEY)
                    raise _Refused(403, "FORBIDDEN", f"{kind.title()} {shown} not exposed")
                async with rt.accepted(f"tunnel {doing} of {id!r}"):
                    body = await read_json(request)
                    with runner.current_request.provide(caller(request, rid)):
                        return respond(200, await work(request, id, body, rid), rid)
            except _Refused as no:
                return refused(no, rid)
            except ClientDisconnect:
                return refused(_Refused(499, "REQUEST_ABORTED", "Client Closed Request"), rid)
            except Exception as exc:
                return failed(exc, rid, f"{kind} {id!r}")
            except anyio.get_cancelled_exc_class():
                if not rt.shutting_down:
                    raise
            # uvicorn cancelled it past shutdown_grace: answer (the connection is open), log
            cancelled_past_grace(f"tunnel {doing} of {kind} {id!r}", rid, grace, log)
            return cut_off(rid)

        return handle

    async def run_task(request: Request, tid: str, body: Any, rid: str) -> Any:
        if isinstance(body, dict) and "input" in body:
            body = body["input"]
        runner.check_boundary(body, what="input", owner=tid)  # NaN, surrogates, NUL: 422
        return {"ok": True, "result": await rt.run_task(tid, body)}

    async def emit(request: Request, eid: str, body: Any, rid: str) -> Any:
        body = body if isinstance(body, dict) else {}
        payload = body.get("payload")
        runner.check_boundary(payload, what="payload", owner=eid)
        token = from_tunnel.set(eid)
        try:
            await rt.emit(eid, payload)
        finally:
            from_tunnel.reset(token)
        answer: dict[str, Any] = {"ok": True}
        if body.get("returnPayload"):
            answer["result"] = payload  # as the hooks left it (mutated in place)
        return answer

    task = endpoint("task", tasks, run_task)
    event = endpoint("event", events, emit)

    async def discovery(request: Request) -> Response:
        rid = request_id(request)
        try:
            if request.method != "GET":
                raise _Refused(405, "METHOD_NOT_ALLOWED", "Method Not Allowed")
            authenticate(request, rid)
        except _Refused as no:
            return refused(no, rid)
        allow = {"enabled": True, "tasks": list(exposed.tasks), "events": list(exposed.events)}
        return respond(200, {"ok": True, "result": {"allowList": allow}}, rid)

    async def not_found(request: Request, exc: Exception | None = None) -> Response:
        return refused(_Refused(404, "NOT_FOUND", "Not Found"), request_id(request))

    every = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(
        routes=[
            Route(f"{base}/task/{{id:path}}", task, methods=every),
            Route(f"{base}/event/{{id:path}}", event, methods=every),
            Route(f"{base}/discovery", discovery, methods=every),
            Route(f"{base}/{{rest:path}}", not_found, methods=every),
            Route("/{rest:path}", not_found, methods=every),
        ],
        # a path no route matches (one holding a newline): the envelope, not plain text
        exception_handlers={404: not_found},
    )


async def serve(config: TunnelServerConfig) -> AsyncIterator[TunnelServer]:
    require_asyncio("tunnel.server")
    rt = runner.current_runtime.use()
    base = config.base_path.rstrip("/") or ""
    host, port, grace = config.host, config.port, config.shutdown_grace
    rt.extend_drain(grace)
    tasks = select(config.tasks or (), rt.store.tasks)
    events = select(config.events or (), rt.store.events)
    sock = bind(host, port, "tunnel.server")
    value = TunnelServer(host, sock.getsockname()[1], base, tuple(tasks), tuple(events))
    try:
        app = build_app(rt, config, value)
    except BaseException:
        sock.close()
        raise
    async with serving(rt, app, sock, grace, f"tunnel.server on {value.url}"):
        yield value
