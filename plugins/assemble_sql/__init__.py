"""Built-in plugin ``sql``: the ``sql.engine`` resource (a SQLAlchemy ``AsyncEngine``).

See docs/plugins/sql.engine.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler

from ._engine import SqlEngineError, components
from ._errors import SqlInvalidData, SqlTimeout, SqlUnavailable

__all__ = ["SqlEngineError", "SqlInvalidData", "SqlTimeout", "SqlUnavailable"]


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return components()
