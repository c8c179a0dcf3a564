from __future__ import annotations

import os
from typing import Any

NOT_CALLABLE = 42

__all__ = ["NOT_CALLABLE", "greet", "needs_clock", "os", "uses_db"]


def greet(input: Any) -> str:
    return "hello"


def uses_db(input: Any, db: Any) -> str:
    return "ok"


def needs_clock(input: Any, clock: Any) -> str:
    return "tick"
