"""Serving an ASGI app the way ``http.server`` does: the public machinery other plugins
build on (``tunnel.server`` does), so that they get the same connection layer and the
same shutdown without reaching into this plugin's private modules.

A resource that serves its own ASGI app::

    from assemble_http.serving import bind, require_asyncio, serving

    async def init(config):
        require_asyncio("my.server")                  # uvicorn runs on asyncio only
        sock = bind(config["host"], config["port"], "my.server")  # taken: a clear error
        async with serving(rt, my_asgi_app, sock, grace=15.0, what="my.server on ..."):
            yield value                                # the resource's life

- :func:`bind`: a listening, non-blocking socket, or :class:`HttpServerError` naming
  the address (``Address already in use``, with a hint).
- :func:`serving`: serves once the app runs, stops accepting when it stops, lets the
  requests in flight finish within ``grace``; every connection under :class:`EdgeLimits`
  (header, body, keep-alive and write timeouts, ``max_connections``; see
  docs/plugins/http.server.md "Connections"), what the connection layer answers itself
  logged through a :class:`assembler.FailureLog`.
- :func:`drain` and :data:`DRAIN_MIN_BYTES`: read and drop the rest of a refused body
  so that the answer is not lost to a reset.
- :func:`past_grace` and :func:`cancelled_past_grace`: the 503 (code and message) of a
  request cancelled because it outlived ``grace``, and the warning that names it.

Names not listed in ``__all__`` stay private to ``http.server``.
"""

from __future__ import annotations

from ._protocol import EdgeLimits
from ._server import (
    DRAIN_MIN_BYTES,
    HttpServerError,
    bind,
    cancelled_past_grace,
    drain,
    past_grace,
    require_asyncio,
    serving,
)

__all__ = [
    "DRAIN_MIN_BYTES",
    "EdgeLimits",
    "HttpServerError",
    "bind",
    "cancelled_past_grace",
    "drain",
    "past_grace",
    "require_asyncio",
    "serving",
]
