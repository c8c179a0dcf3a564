"""Built-in plugin ``logging``: the ``logger`` resource (always registered) and ``logging.tasks``.

See docs/plugins/logger.md and docs/plugins/logging.tasks.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler

from . import _logger, _tasks

__all__: list[str] = []


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return [*_logger.components(), *_tasks.components()]


@assembler.hookimpl
def assemble_compile(manifest: assembler.Manifest, definitions: list[Any]) -> Sequence[Any]:
    return _logger.with_secrets(manifest, definitions)
