"""A TCP proxy that injects faults for real: a peer that stalls, resets or is gone.

This kernel has no netem and the machine no iptables or toxiproxy
(../shared/reference/reliability.md §8), so faults are made in user space, between a
client and the real server (PostgreSQL, Redis): the client connects to the proxy's
port and the proxy forwards bytes both ways until told otherwise.

- :meth:`FaultProxy.pause`: TCP stays open, nothing is forwarded (a stalled database:
  the client's bytes are read and held, no answer comes back); :meth:`resume` lets the
  held bytes through.
- :meth:`FaultProxy.reset`: every open connection is closed with a reset (RST).
- :meth:`FaultProxy.refuse`: new connections are closed at once (a server that is
  down); :meth:`accept` ends it.

It runs its own asyncio loop in a daemon thread, so sync tests, subprocess tests and
benchmarks all drive it with plain method calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["FaultProxy", "fault_proxy"]


class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port``, with faults on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._flowing: asyncio.Event | None = None
        self._refusing = False
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0  # accepted so far

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- faults -----------------------------------------------------------------

    def pause(self) -> None:
        """Stop forwarding in both directions; connections stay open (a stall)."""
        self._loop.call_soon_threadsafe(self._flow().clear)

    def resume(self) -> None:
        """Forward again, the held bytes first."""
        self._loop.call_soon_threadsafe(self._flow().set)

    def reset(self) -> None:
        """Close every open connection with a reset (RST), both sides."""
        self._call(self._reset())

    def refuse(self) -> None:
        """Close new connections at once, as a server that is down would."""
        self._refusing = True

    def accept(self) -> None:
        self._refusing = False

    # -- inside the loop --------------------------------------------------------

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _flow(self) -> asyncio.Event:
        assert self._flowing is not None
        return self._flowing

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _reset(self) -> None:
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._refusing:
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                with contextlib.suppress(Exception):
                    w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._flow().wait()  # paused: hold the bytes, answer nothing
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN (SO_LINGER 0): the peer sees a reset."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.transport.abort()


@contextlib.contextmanager
def fault_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    """A started :class:`FaultProxy` to ``host:port``, closed on exit."""
    proxy = FaultProxy(host, port).start()
    try:
        yield proxy
    finally:
        proxy.close()
