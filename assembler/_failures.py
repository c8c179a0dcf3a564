"""How an edge logs the failures it answers: each kind once in full, then a count.

An outage answers thousands of requests with the same failure (a database that refuses
connections: 2,300 answers in 8 s). A traceback per request buries the log and costs
more than the answer; a log with none hides the cause. :class:`FailureLog` writes the
first failure of a kind with its detail (a classified error's driver account, an
unexpected error's traceback) and the request id, then at most one line per interval
saying how many more there were.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from runner.errors import RunnerError

__all__ = ["FailureLog"]


@dataclass
class _Episode:
    started: float  # when the current interval began
    seen: float  # the latest failure of this kind
    more: int = 0  # failures since the last line written
    latest: str = ""  # the request id of the latest one


class FailureLog:
    """Log answered failures: the first of a kind in full, then one line per ``interval``.

    A kind is the place (``what``: ``GET /users/{id} (task 'get_user')``) and the error's
    code and message (a :class:`~runner.errors.RunnerError`: "refuses connections" and
    "the connection was lost" are two kinds of ``db.unavailable``) or class. A kind quiet
    for longer than ``interval`` starts over: its next failure is written in full again.
    At most ``max_kinds`` kinds are tracked (the oldest is forgotten first).
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 10.0,
        max_kinds: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.interval, self.max_kinds, self.clock = logger, interval, max_kinds, clock
        self._episodes: OrderedDict[tuple[str, str, str], _Episode] = OrderedDict()

    def failed(self, what: str, request_id: str, exc: BaseException) -> None:
        """Log that ``what`` failed with ``exc`` for request ``request_id``.

        A :class:`~runner.errors.RunnerError` (an answer the edge chose: a 503, a 504) is
        a warning with its message and ``detail``; anything else an error with its
        traceback."""
        if isinstance(exc, RunnerError):
            kind, message = exc.code, exc.message
        else:
            kind, message = type(exc).__qualname__, ""
        key = (what, kind, message)
        now = self.clock()
        episode = self._episodes.get(key)
        if episode is None or now - episode.seen > self.interval:
            if episode is not None and episode.more:
                self._summary(what, kind, episode, now)
            self._episodes[key] = _Episode(started=now, seen=now)
            self._episodes.move_to_end(key)
            while len(self._episodes) > self.max_kinds:
                self._episodes.popitem(last=False)
            self._first(what, request_id, exc)
            return
        episode.seen, episode.latest = now, request_id
        episode.more += 1
        if now - episode.started >= self.interval:
            self._summary(what, kind, episode, now)
            episode.started, episode.more = now, 0

    def flush(self) -> None:
        """Write the counts not written yet (at shutdown)."""
        now = self.clock()
        for (what, kind, _), episode in self._episodes.items():
            if episode.more:
                self._summary(what, kind, episode, now)
                episode.started, episode.more = now, 0

    def _first(self, what: str, request_id: str, exc: BaseException) -> None:
        extra = {"request_id": request_id}
        if not isinstance(exc, RunnerError):
            self.logger.error(
                "%s failed (request %s) with an unexpected %s",
                what,
                request_id,
                type(exc).__name__,
                exc_info=exc,
                extra=extra,
            )
            return
        detail = getattr(exc, "detail", "")
        self.logger.warning(
            "%s failed (request %s): %s: %s%s",
            what,
            request_id,
            exc.code,
            exc.message,
            f" ({detail})" if detail else "",
            extra=extra,
        )

    def _summary(self, what: str, kind: str, episode: _Episode, now: float) -> None:
        more = episode.more
        self.logger.warning(
            "%s failed %s more %s with %s in the last %.0fs (the latest: request %s)",
            what,
            f"{more:,}",
            "time" if more == 1 else "times",
            kind,
            max(now - episode.started, 1.0),
            episode.latest,
            extra={"request_id": episode.latest},
        )
