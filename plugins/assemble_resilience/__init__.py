"""Built-in plugin ``resilience``: retry, timeout, rate_limit, circuit_breaker, and more.

Also concurrency and fallback: task middleware, each a factory so every use keeps its own
state. See docs/plugins/<type>.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler

from . import _breaker, _concurrency, _fallback, _rate_limit, _retry, _timeout

__all__: list[str] = []


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return [
        *_retry.components(),
        *_timeout.components(),
        *_rate_limit.components(),
        *_breaker.components(),
        *_concurrency.components(),
        *_fallback.components(),
    ]
