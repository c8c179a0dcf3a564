"""The app's resources: an in-memory quote store and a simulated flaky upstream."""

from __future__ import annotations

from typing import Any

SEED = [
    "Simple is better than complex.",
    "Errors should never pass silently.",
    "Now is better than never.",
]


class Store:
    def __init__(self, seed: int) -> None:
        self.quotes: dict[int, dict[str, Any]] = {}
        for text in SEED[:seed]:
            self.add(text, "seed")

    def add(self, text: str, by: str) -> dict[str, Any]:
        quote = {"id": len(self.quotes) + 1, "text": text, "by": by}
        self.quotes[quote["id"]] = quote
        return quote


def make_store(config: dict[str, Any]) -> Store:
    return Store(int(config["seed"]))


class Upstream:
    """Fails every ``fail_every``-th call with a ConnectionError, like a real remote might."""

    def __init__(self, fail_every: int) -> None:
        self.fail_every, self.calls = fail_every, 0

    async def fetch(self) -> dict[str, Any]:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 1:
            raise ConnectionError("upstream reset the connection")
        return {"id": 1000 + self.calls, "text": "Readability counts.", "source": "remote"}


def make_upstream(config: dict[str, Any]) -> Upstream:
    return Upstream(int(config.get("fail_every", 0)))
