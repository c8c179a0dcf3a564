"""Built-in plugin ``http``: the ``http.server`` resource and the ``http.route`` tag.

See docs/plugins/http.server.md and docs/plugins/http.route.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler

from ._routes import check_routes
from ._routes import components as _route_components
from ._server import HttpServer, HttpServerError
from ._server import components as _server_components

__all__ = ["HttpServer", "HttpServerError"]


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return [*_server_components(), *_route_components()]


@assembler.hookimpl
def assemble_validate(manifest: assembler.Manifest, report: assembler.Report) -> None:
    """Route paths are well formed; no two routes share one method and path."""
    check_routes(manifest, report)
