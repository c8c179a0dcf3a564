"""Built-in plugin ``redis``: the ``redis.client`` resource (a ``redis.asyncio.Redis``).

See docs/plugins/redis.client.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler

from . import _client
from ._outage import Outage, describe, redis_errors

__all__ = ["Outage", "describe", "redis_errors"]  # for the built-ins that use Redis


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return [*_client.components()]
