from __future__ import annotations

from typing import Any


async def stamp(call: Any, config: Any) -> Any:
    return await call.next(call.input)
