"""Built-in plugin ``redis``: the ``redis.client`` resource (a ``redis.asyncio.Redis``).

See docs/plugins/redis.client.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler

from . import _client

__all__: list[str] = []


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return [*_client.components()]
