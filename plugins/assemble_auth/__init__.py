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
