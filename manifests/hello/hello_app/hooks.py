from __future__ import annotations

import sys
from typing import Any

import runner


def log_greeting(event: runner.EventEmission) -> None:
    print(f"hello: greeted {event.data['name']}", file=sys.stderr)


async def remember(event: runner.EventEmission, greeter: dict[str, Any]) -> None:
    greeter["greeted"].append(event.data["name"])
