"""The connection layer of ``http.server`` and ``tunnel.server``: uvicorn's HTTP/1.1
protocol (h11) and server, with what a listener open to strangers needs and uvicorn
lacks. Written here by hand:

- a **header timeout**: a connection must send a whole request head within
  ``header_timeout`` of its first byte (of connecting, for the first request), restarted
  for each request on a kept-alive connection. uvicorn has none: a slowloris client
  trickling header bytes keeps its connection (and a file descriptor) forever;
- a **body timeout**: the body must have arrived ``body_timeout`` after the head (408);
- a **write timeout**: a client that does not read its answers (pipelined requests, a
  large answer) is dropped when no byte of the answer leaves for ``write_timeout``;
  uvicorn waits on it forever, and its close waits for the unsent bytes;
- a **connection limit**: past ``max_connections`` open connections a new one is
  answered 503 at once and closed, so a flood cannot exhaust the file descriptors;
- a **drain without resets**: on shutdown the connections already waiting in the listen
  backlog are accepted before the listener closes (closing it would reset them), idle
  kept-alive connections linger briefly so that a request already on its way is
  answered (503 ``runner.shutting_down`` from the runtime) instead of reset, and every
  response from then on says ``Connection: close``;
- JSON envelopes for what the connection layer answers itself (400 for a request that
  is not HTTP/1.1, 408, 503), followed by a FIN and a short drain of what the client
  still sends (a plain close with unread bytes sends a reset, and the answer is lost),
  logged through the server's :class:`assembler.FailureLog`
  (one line per kind per interval: strangers can repeat these at will).

The protocol is uvicorn's h11 one by name, never ``auto`` (httptools when installed):
the timers read h11's connection state. The classes that subclass uvicorn's are in
``_h11`` (imported when a server starts: this module imports without uvicorn).
"""

from __future__ import annotations

import http
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import assembler
from runner.errors import RunnerError

CLOSE = (b"connection", b"close")

#: How long an idle kept-alive connection stays open once shutdown begins, at most (and
#: at most half the shutdown grace): a request already sent on it is answered 503 with
#: ``Connection: close`` instead of meeting a closed socket.
DRAIN_LINGER = 1.0
#: How long a connection answered by the connection layer (408, 400, the 503 past
#: max_connections) is read and drained after its answer before it is dropped: long
#: enough for a client to read the answer, short enough that it holds no slot.
ANSWER_LINGER = 2.0


@dataclass(frozen=True)
class EdgeLimits:
    """What a connection may cost (``http.server``'s config keys; seconds)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    write_timeout: float = 30.0
    max_connections: int = 1000
    trusted_proxies: tuple[str, ...] = ()
    linger: float = DRAIN_LINGER


class BadHttp(RunnerError):
    """The bytes received are not an HTTP/1.1 request (answered by the connection layer)."""

    code = "http.bad_request"
    http_status = 400


class RequestTimeout(RunnerError):
    """A request's head or body did not arrive in time."""

    code = "http.request_timeout"
    http_status = 408


class TooManyConnections(RunnerError):
    """``max_connections`` connections are open: a new one is refused."""

    code = "http.too_many_connections"
    http_status = 503


def raw_response(exc: RunnerError, request_id: str) -> bytes:
    """A whole HTTP/1.1 response (JSON envelope, ``Connection: close``) for ``exc``."""
    status = exc.http_status or 500
    error = {"code": exc.code, "message": exc.message, "request_id": request_id}
    body = json.dumps({"error": error}, separators=(",", ":")).encode()
    retry = "retry-after: 1\r\n" if status == 503 else ""
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\n{retry}"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class Edge:
    """One server's connection policy and state: its limits, whether it is draining, its
    failure log. As an ASGI app it wraps the app: once draining, every response says
    ``Connection: close`` (h11 then closes the connection after it), so no client sends
    another request on a connection about to close."""

    def __init__(
        self, app: Any, limits: EdgeLimits, what: str, failures: assembler.FailureLog
    ) -> None:
        self.app, self.limits, self.what, self.failures = app, limits, what, failures
        self.draining = False
        self.logger = logging.getLogger("uvicorn.error")  # quietened by edge_server()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Any) -> None:
            if self.draining and message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if CLOSE not in headers:
                    message = {**message, "headers": [*headers, CLOSE]}
            await send(message)

        await self.app(scope, receive, send_closing)

    def answered(self, exc: RunnerError, request_id: str) -> None:
        """Log an answer the connection layer gave (counted per kind and interval)."""
        self.failures.failed(self.what, request_id, exc)


#: uvicorn's per-request warnings that a stranger triggers at will: dropped from its
#: log (the edge counts those answers in its FailureLog instead).
_NOISE = (
    "Invalid HTTP request received.",
    "Unsupported upgrade request.",
    "No supported WebSocket library",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_NOISE))


def _quiet_logger() -> logging.Logger:
    """``uvicorn.error`` less :data:`_NOISE` (a child logger: uvicorn's stays as it is)."""
    quiet = logging.getLogger("uvicorn.error.edge")
    if not any(isinstance(f, _DropNoise) for f in quiet.filters):
        quiet.addFilter(_DropNoise())
    # uvicorn reads `logger.level` itself to skip its trace lines: give it a real one
    quiet.setLevel(logging.getLogger("uvicorn.error").getEffectiveLevel())
    return quiet


class SlowReader(RunnerError):
    """A client took no byte of its answer for ``write_timeout``: dropped (nobody reads
    an answer)."""

    code = "http.slow_reader"
    http_status = 408


def late_reader(seconds: float) -> SlowReader:
    return SlowReader(
        f"the client took no byte of its answer for {seconds:g}s (write_timeout): dropped"
    )


def late(part: str, seconds: float, key: str) -> RequestTimeout:
    """The 408 of a request whose ``part`` (head, body) took longer than ``key`` allows."""
    return RequestTimeout(f"the request {part} did not arrive within {seconds:g}s ({key})")


def edge_server(edge: Edge, grace: float) -> Any:
    """A ``uvicorn.Server`` serving ``edge`` with its protocol and limits, whose shutdown
    takes the listen backlog before it closes the listener (see ``_h11``)."""
    import uvicorn

    from . import _h11

    limits = edge.limits
    protocol = type("EdgeProtocol", (_h11.EdgeProtocol,), {"edge": edge})
    config = uvicorn.Config(
        edge,
        http=protocol,
        ws="none",  # no websocket routes: an upgrade request is a plain request
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, math.ceil(grace)),
        proxy_headers=bool(limits.trusted_proxies),
        forwarded_allow_ips=list(limits.trusted_proxies),
    )
    edge.logger = _quiet_logger()  # after Config, which sets uvicorn's log levels
    return _h11.EdgeServer(config)
