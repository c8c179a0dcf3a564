"""Built-in plugin ``cache``: ``cache.memory`` and ``cache.redis`` task middleware.

See docs/plugins/cache.memory.md and docs/plugins/cache.redis.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler

from . import _memory, _redis

__all__: list[str] = []


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return [*_memory.components(), *_redis.components()]
