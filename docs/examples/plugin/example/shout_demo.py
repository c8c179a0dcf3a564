from typing import Any


def hello(input: Any, visits: Any) -> str:
    return f"hello visitor {visits.bump()}"
