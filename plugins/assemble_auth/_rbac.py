"""``auth.rbac``: let a call through only when the principal has one of the allowed roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import assembler
import runner
from runner.errors import Forbidden, Unauthorized

from ._principal import Principal, auth


@dataclass(frozen=True)
class RbacConfig:
    """``auth.rbac``'s config."""

    allowed_roles: list[str] = assembler.option(
        doc="a call passes when the principal has at least one of these roles",
        schema={"type": "array", "items": {"type": "string", "minLength": 1}},
        minItems=1,
        uniqueItems=True,
    )


def make_rbac(config: RbacConfig | Mapping[str, Any]) -> Callable[..., Awaitable[Any]]:
    """The ``auth.rbac`` factory: the allowed roles as a frozenset, built once per use."""
    config = assembler.from_config(RbacConfig, config)
    if not config.allowed_roles:  # the schema says so too; a config built in code may not
        raise ValueError("invalid auth.rbac config: `allowed_roles` must be a non-empty list")
    allowed = frozenset(config.allowed_roles)

    async def rbac_middleware(call: runner.TaskCall, config: Any) -> Any:
        principal = auth.try_use()
        if not isinstance(principal, Principal):
            raise Unauthorized()  # no auth.jwt ran before this (or it was left out)
        if allowed.isdisjoint(principal.roles):
            raise Forbidden()
        return await call.next()

    return rbac_middleware


def components() -> Sequence[assembler.Component]:
    return [
        assembler.Component(
            name="auth.rbac",
            kind="middleware",
            config=RbacConfig,
            factory=make_rbac,
            description="403 unless the `auth` principal has one of `allowed_roles`; "
            "401 without a principal (put auth.jwt before it)",
        )
    ]
