"""Redis outages as the components that use Redis see them: one warning per outage."""

from __future__ import annotations

import logging
import time


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a failed Redis operation raises (``OSError`` covers timeouts and sockets)."""
    try:
        from redis.exceptions import RedisError
    except ImportError:  # a client of another make; `check` asks for the library anyway
        return (OSError,)
    return (RedisError, OSError)


def describe(exc: BaseException, timeout: float) -> str:
    """A failed operation in a few words (a bare timeout says how long it waited)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout * 1000:.0f} ms"
    return f"{type(exc).__name__}: {exc}"


class Outage:
    """The first failure warns, a success ends the outage (and says so at info level).

    After a failure, :meth:`usable` is false for ``retry_after`` seconds, so calls do not
    each wait on a Redis that just failed. ``what`` names the component in messages,
    ``then`` says what calls do meanwhile, ``resumed`` what happens when Redis answers.
    """

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        then: str,
        resumed: str,
        timeout: float,
        retry_after: float = 1.0,
    ) -> None:
        self.log, self.what, self.then, self.resumed = log, what, then, resumed
        self.timeout, self.retry_after = timeout, retry_after
        self.down = False
        self.retry_at = 0.0

    def usable(self) -> bool:
        return not self.down or time.monotonic() >= self.retry_at

    def failed(self, task: str, exc: BaseException) -> None:
        self.retry_at = time.monotonic() + self.retry_after
        if not self.down:
            self.down = True
            self.log.warning(
                "%s of %r: Redis is unavailable (%s); %s until it answers again",
                self.what,
                task,
                describe(exc, self.timeout),
                self.then,
            )

    def ok(self) -> None:
        if self.down:
            self.down = False
            self.log.info("%s: Redis answers again%s", self.what, self.resumed)
