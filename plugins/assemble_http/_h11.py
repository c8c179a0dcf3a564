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

from ._protocol import (
    ANSWER_LINGER,
    BadHttp,
    Edge,
    TooManyConnections,
    late,
    late_reader,
    raw_response,
)


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
        self._stalled: asyncio.TimerHandle | None = None  # the write deadline (see below)
        self._unsent = 0  # bytes waiting to be sent when it was (re)armed
        self._ending: asyncio.TimerHandle | None = None  # the end of a lingering close

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        limit = self.edge.limits.max_connections
        if len(self.connections) >= limit:
            # refused before it is counted or parsed: it costs its fd for a moment only
            self._refused, self.transport = True, transport
            message = f"the server has {limit} connections open (max_connections); retry shortly"
            self._answer(TooManyConnections(message))
            return
        super().connection_made(transport)
        # any byte the kernel will not take yet pauses writing: from then on the client
        # must take some of the answer within write_timeout (see pause_writing)
        transport.set_write_buffer_limits(high=0)
        if self.edge.draining:  # accepted from the backlog as the server stops
            self.shutdown()
        else:
            self._arm("head", self.edge.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        for timer in (self._stalled, self._ending):
            if timer is not None:
                timer.cancel()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._ending is not None:
            return  # answered and closing: what the client still sends is dropped
        super().data_received(data)
        self._track()

    def eof_received(self) -> None:
        if self._ending is not None:
            self.transport.close()  # the client read the answer and left

    # -- a client that does not read --------------------------------------------------
    # uvicorn waits on a paused transport without a deadline, and transport.close()
    # waits for the unsent bytes: a client that sends requests (pipelined, or one for a
    # large answer) and never reads would hold its connection, its fd and a slot of
    # max_connections forever. Writing pauses as soon as the kernel refuses bytes; if no
    # byte leaves within write_timeout from then, the connection is aborted.

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_writes()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def _watch_writes(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
        self._unsent = self.transport.get_write_buffer_size()
        self._stalled = self.loop.call_later(self.edge.limits.write_timeout, self._write_check)

    def _write_check(self) -> None:
        self._stalled = None
        if self.transport.is_closing() and self.transport.get_write_buffer_size() == 0:
            return
        if self.transport.get_write_buffer_size() < self._unsent:
            self._watch_writes()  # slow, but it reads: another write_timeout
            return
        self.edge.answered(late_reader(self.edge.limits.write_timeout), os.urandom(16).hex())
        self.transport.abort()

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
        """Answer ``exc`` in the JSON envelope, close, log it (counted per kind).

        The close lingers: the answer is followed by a FIN, and what the client still
        sends (the request it was writing) is read and dropped until it leaves, for
        ``ANSWER_LINGER`` seconds at most. Closing with unread bytes would send a reset,
        and the client would lose the answer (measured: 48 of 50 refusals read as
        resets before)."""
        rid = os.urandom(16).hex()
        transport = self.transport
        transport.write(raw_response(exc, rid))
        self.edge.answered(exc, rid)
        if self._ending is not None or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()  # uvicorn may have paused it: the rest is drained
        self._ending = self.loop.call_later(ANSWER_LINGER, transport.abort)

    def _close(self) -> None:
        self.transport.close()  # connection_lost tells h11 and the request cycle


def _accept_queued(sock: socket.socket, most: int) -> list[socket.socket]:
    """The connections waiting in ``sock``'s listen backlog, ``most`` at most (``sock``
    is non-blocking): past ``max_connections`` each would only be refused, and a flood
    at shutdown must not take every file descriptor."""
    taken: list[socket.socket] = []
    while len(taken) < most:
        try:
            conn, _ = sock.accept()
        except ConnectionAbortedError:  # gone while queued: the next one
            continue
        except OSError:  # none left (EAGAIN), or no fd left: the rest is reset
            return taken
        conn.setblocking(False)
        taken.append(conn)
    return taken


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
        """Accept what waits in the backlog, then close the listener right after (only
        a connection that arrives in the microseconds between can still be reset), then
        serve what was taken: closing a listener with connections queued would reset
        them."""
        loop = asyncio.get_running_loop()
        protocol: Any = self.config.http_protocol_class  # an EdgeProtocol
        most = protocol.edge.limits.max_connections
        queued: list[socket.socket] = []
        for sock in sockets:
            if sock.fileno() != -1:
                loop.remove_reader(sock.fileno())  # the loop accepts no more
                queued += _accept_queued(sock, most - len(queued))
        for server in self.servers:
            server.close()
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
