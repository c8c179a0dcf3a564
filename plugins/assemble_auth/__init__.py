"""Built-in plugin ``auth``: ``auth.jwt`` and ``auth.rbac`` task middleware, the ``auth`` context.

See docs/plugins/auth.jwt.md and docs/plugins/auth.rbac.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler

from ._jwt import components as _jwt_components
from ._principal import Principal, auth
from ._rbac import components as _rbac_components

__all__ = ["Principal", "auth"]


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return [*_jwt_components(), *_rbac_components(), auth]


# Middleware that must run inside auth.jwt: (code, what goes wrong otherwise).
_NEEDS_PRINCIPAL = {
    "auth.rbac": (
        "auth/rbac-before-jwt",
        "it never sees a principal and refuses every call (401)",
    ),
    "cache.memory": (
        "auth/cache-before-jwt",
        "a cached result would be served before the token is checked, to any caller",
    ),
    "cache.redis": (
        "auth/cache-before-jwt",
        "a cached result would be served before the token is checked, to any caller",
    ),
}


@assembler.hookimpl
def assemble_validate(manifest: assembler.Manifest, report: assembler.Report) -> None:
    """``auth.rbac`` or a cache outside the ``auth.jwt`` that sets the principal is a mistake."""
    declared = manifest.data.get("middleware") or {}

    def use_of(entry: Any) -> str | None:
        body = declared.get(entry) if isinstance(entry, str) else entry
        return body.get("use") if isinstance(body, dict) else None

    everywhere = [
        (id, ("middleware", id))
        for id, body, _ in manifest.components("middleware")
        if body.get("everywhere") is True
    ]
    for tid, body, path in manifest.components("tasks"):
        own = [(e, (*path, "middleware", i)) for i, e in enumerate(body.get("middleware") or ())]
        chain = [(use_of(e), at) for e, at in [*everywhere, *own]]  # outer to inner
        uses = [u for u, _ in chain]
        for i, (use, at) in enumerate(chain):
            if use not in _NEEDS_PRINCIPAL:
                continue
            if "auth.jwt" in uses[i + 1 :] and "auth.jwt" not in uses[:i]:
                code, consequence = _NEEDS_PRINCIPAL[use]
                report(
                    f"task {tid!r}: {use} runs before auth.jwt, so {consequence}",
                    at=at,
                    code=code,
                    hint=f"list auth.jwt before {use}: middleware run outer to inner, "
                    "in the order listed",
                )
