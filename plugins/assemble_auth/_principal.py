"""Who is calling: the principal ``auth.jwt`` puts in the ``auth`` async context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import runner


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: ``subject`` (the token's ``sub``), ``roles`` and all ``claims``."""

    subject: str
    roles: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


#: The ``auth`` async context: registered in every app; its value is a :class:`Principal`.
#: Tasks may depend on it (``dependencies: {auth: auth}``) and call ``auth.use()``.
auth = runner.AsyncContext(
    "auth", meta={"description": "the authenticated principal (set by auth.jwt)"}
)
