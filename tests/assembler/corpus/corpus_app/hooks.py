from __future__ import annotations

from typing import Any


def on_event(event: Any, **deps: Any) -> None:
    return None
