from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any


async def make_greeter(config: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """A resource as an async generator: the code after `yield` runs at shutdown."""
    greeter: dict[str, Any] = {"greeting": config["greeting"], "greeted": []}
    yield greeter
    print(f"hello: greeted {len(greeter['greeted'])} people", file=sys.stderr)
