"""A small load generator for the fault tests: clients that call a route in a loop and
record every answer (status, latency) or transport failure, with when it happened."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic() when the request was sent
    seconds: float
    status: int  # 0: no HTTP answer (a reset, a refused connection, a timeout)
    error: str = ""


@dataclass
class Load:
    """``clients`` threads, each sending ``request(client)`` in a loop until stopped."""

    request: Callable[[httpx.Client], httpx.Response]
    clients: int = 8
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _client(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                start = time.monotonic()
                try:
                    status, error = self.request(client).status_code, ""
                except httpx.HTTPError as exc:
                    status, error = 0, f"{type(exc).__name__}: {exc}"
                self.outcomes.append(Outcome(start, time.monotonic() - start, status, error))

    def between(self, start: float, end: float) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.started < end]

    def first_success_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first 2xx answer to a request sent after it."""
        times = [o.started + o.seconds for o in self.outcomes if o.started >= moment]
        ok = [
            o.started + o.seconds
            for o in self.outcomes
            if o.started >= moment and 200 <= o.status < 300
        ]
        return min(ok) - moment if ok and times else None
