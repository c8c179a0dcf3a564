"""The inbound request a call belongs to (an HTTP request, a tunnel call, a CLI call)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ._definitions import AsyncContext


@dataclass(frozen=True, slots=True)
class Request:
    """Who asked: ``id`` (logged on every record), ``headers`` (lower-case names),
    ``transport`` (``http``, ``tunnel``, ``nats``, ``cli``) and ``client``, the peer's
    address where the transport knows it (``"203.0.113.7"``; ``""`` otherwise).

    Edges (the HTTP server, tunnels, ``assemble call``) provide it through
    :data:`current_request`; middleware reads it with ``current_request.try_use()``
    (``auth.jwt`` takes its token from ``authorization``, ``logging.tasks`` logs ``id``).
    """

    id: str
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    transport: str = ""
    client: str = ""

    def __post_init__(self) -> None:
        if any(k != k.lower() for k in self.headers):  # `Authorization` is `authorization`
            lowered = {k.lower(): v for k, v in self.headers.items()}
            object.__setattr__(self, "headers", MappingProxyType(lowered))

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name, or ``None``."""
        return self.headers.get(name.lower())


current_request = AsyncContext("request", meta={"description": "the inbound request"})
