from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


async def greet(
    input: dict[str, Any],
    greeter: dict[str, Any],
    greeted: Callable[[dict[str, Any]], Awaitable[None]],
) -> dict[str, str]:
    """Greets `input.name` and emits `greeted`."""
    message = f"{greeter['greeting']}, {input['name']}!"
    await greeted({"name": input["name"]})
    return {"message": message}


def count(input: Any, greeter: dict[str, Any]) -> int:
    """How many people were greeted since the app started (a sync task)."""
    return len(greeter["greeted"])
