"""uvicorn's h11 protocol and server, with the limits of ``_protocol`` (read it first).

Hand-written because uvicorn lacks them: the header and body timeouts, the connection
limit, JSON answers from the connection layer, and a shutdown that neither resets the
connections waiting in the listen backlog nor closes idle kept-alive ones under a
request on its way. Imported when a server starts (it needs uvicorn and h11).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from runner.errors import RunnerError

from ._protocol import BadHttp, Edge, TooManyConnections, late, raw_response


class EdgeProtocol(H11Protocol):
    """One connection, under the limits of :attr:`edge` (set on a subclass per server).

    ``_phase`` names what the connection's deadline waits for: ``head`` (a request head,
    ``header_timeout``), ``body`` (the rest of a body, ``body_timeout``), ``linger``
    (shutdown: an idle connection's last chance to get a request), or ``""`` (none: a
    request is being answered, or uvicorn's keep-alive timer runs)."""

    edge: ClassVar[Edge]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = self.edge.logger
        self.timeout_keep_alive = self.edge.limits.keep_alive_timeout  # type: ignore[assignment]
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = ""
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        limit = self.edge.limits.max_connections
        if len(self.connections) >= limit:
            # refused before it is counted or parsed: it costs its fd for a moment only
            self._refused, self.transport = True, transport
            message = f"the server has {limit} connections open (max_connections); retry shortly"
            self._answer(TooManyConnections(message))
            return
        super().connection_made(transport)
        if self.edge.draining:  # accepted from the backlog as the server stops
            self.shutdown()
        else:
            self._arm("head", self.edge.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    def send_400_response(self, msg: str) -> None:
        self._answer(BadHttp("the request is not valid HTTP/1.1"))

    def shutdown(self) -> None:
        """Called by the server as it stops: a busy connection closes after its response
        (which says ``Connection: close``); an idle one lingers (``limits.linger``)."""
        if self._refused or self._phase == "linger":
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            super().shutdown()
        elif self.conn.their_state is h11.SEND_BODY:
            self._close()  # answered already; the rest of its body is not waited for
        else:
            self._unset_keepalive_if_required()
            self._arm("linger", self.edge.limits.linger)

    def _track(self) -> None:
        """Set the deadline for what the connection now waits for (after each read and
        each response). A request that arrived whole costs no timer."""
        if self.transport.is_closing():
            self._disarm()
            return
        state, limits = self.conn.their_state, self.edge.limits
        if state is h11.IDLE:
            if self._phase == "linger":
                return
            if self.timeout_keep_alive_task is not None:
                self._disarm()  # idle between requests: uvicorn's keep-alive timer
            elif self._phase != "head":
                self._arm("head", limits.header_timeout)  # a new head has begun
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body", limits.body_timeout)
        else:
            self._disarm()

    def _arm(self, phase: str, seconds: float) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._phase = phase
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = ""

    def _expired(self) -> None:
        phase, self._deadline, self._phase = self._phase, None, ""
        if self.transport.is_closing():
            return
        cycle, limits = self.cycle, self.edge.limits
        if phase == "linger":
            if cycle is None or cycle.response_complete:
                self._close()  # else it closes after the response under way
        elif phase == "head":
            if self.conn.trailing_data[0]:
                self._answer(late("head", limits.header_timeout, "header_timeout"))
            else:
                self._close()  # not a byte sent: nobody to answer
        elif cycle is not None and not cycle.response_started:
            # the app's receive() now says the client left; its answer is dropped
            cycle.disconnected = True
            cycle.message_event.set()
            self._answer(late("body", limits.body_timeout, "body_timeout"))
        else:
            self._close()

    def _answer(self, exc: RunnerError) -> None:
        """Answer ``exc`` in the JSON envelope, close, log it (counted per kind)."""
        rid = os.urandom(16).hex()
        self.transport.write(raw_response(exc, rid))
        self.transport.close()
        self.edge.answered(exc, rid)

    def _close(self) -> None:
        self.transport.close()  # connection_lost tells h11 and the request cycle


def _accept_queued(sock: socket.socket) -> list[socket.socket]:
    """Every connection waiting in ``sock``'s listen backlog (``sock`` is non-blocking)."""
    taken: list[socket.socket] = []
    while True:
        try:
            conn, _ = sock.accept()
        except ConnectionAbortedError:  # gone while queued: the next one
            continue
        except OSError:  # none left (EAGAIN), or no fd left: the rest is reset
            return taken
        conn.setblocking(False)
        taken.append(conn)


class EdgeServer(uvicorn.Server):
    """uvicorn's server without its signal handlers (the app's runner has them), whose
    shutdown first takes the connections waiting in the listen backlog."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the app's runner handles SIGINT/SIGTERM and tells us to stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._take_backlog(sockets or [])
        await super().shutdown(sockets)

    async def _take_backlog(self, sockets: Sequence[socket.socket]) -> None:
        """Accept what waits in the backlog, then close the listener at once (in one
        step: nothing can queue in between), then serve what was taken: closing a
        listener with connections queued would reset them."""
        loop = asyncio.get_running_loop()
        queued: list[socket.socket] = []
        for sock in sockets:
            if sock.fileno() != -1:
                loop.remove_reader(sock.fileno())  # the loop accepts no more
                queued += _accept_queued(sock)
        for server in self.servers:
            server.close()
        protocol: Any = self.config.http_protocol_class  # an EdgeProtocol
        factory = partial(
            protocol,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=loop,
        )
        for conn in queued:
            try:
                await loop.connect_accepted_socket(factory, conn)
            except OSError:  # pragma: no cover - the peer left meanwhile
                conn.close()
