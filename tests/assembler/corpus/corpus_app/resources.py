from __future__ import annotations

from typing import Any


def make(config: Any, **deps: Any) -> dict[str, Any]:
    return {}
