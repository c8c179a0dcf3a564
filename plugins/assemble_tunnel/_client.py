"""``tunnel.client``: run the listed tasks on a remote Runner tunnel server; mirror events.

At init the client routes every task its ``tasks`` select (``remote: true``
placeholders, usually) through one pooled ``httpx.AsyncClient``; their local middleware
and schemas still run around the remote call. Events its ``events`` select are sent to
the remote after their local hooks ran (Runner's ``mirror`` mode), except those that
came in through a ``tunnel.server`` of this process (no echo).

Failures: a remote typed error is raised again as its local type; the tunnel's own
refusals (401, 403, ...) and an unreadable answer are :class:`TunnelError` (502); an
unreachable remote is :class:`TunnelUnavailable` (503); past ``timeout``,
:class:`~runner.errors.TaskTimeoutError` (504). Only tasks marked ``idempotent: true``
are retried (``retries`` times: on a connection failure and on 502/503/504 answers),
since a retried call may run twice on the remote; others are never sent twice.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio

import assembler
import runner
from runner.errors import TaskTimeoutError

from ._serializer import SerializerError, dump_bytes
from ._wire import (
    IDS,
    REQUEST_ID,
    REQUEST_ID_HEADER,
    TOKEN_HEADER,
    TunnelError,
    TunnelUnavailable,
    from_tunnel,
    open_envelope,
    rebuild,
    select,
)

log = logging.getLogger("assemble.tunnel")


@dataclass(frozen=True)
class TunnelClientConfig:
    """``tunnel.client``'s config."""

    url: str = assembler.option(
        doc="the server's base URL, base path included (`http://10.0.0.5:7070/__runner`)",
        pattern="^https?://",
    )
    token: str = assembler.option(
        doc="sent as `x-runner-token` (use `${env.TUNNEL_TOKEN}`)",
        minLength=1,
        pattern="^[\\x21-\\x7e]+$",
    )
    tasks: list[str] | None = assembler.option(
        None,
        doc="ids or globs of the tasks that run on the remote (declare them `remote: true`)",
        schema=IDS,
    )
    events: list[str] | None = assembler.option(
        None, doc="ids or globs of the events mirrored to the remote", schema=IDS
    )
    timeout: assembler.Duration = assembler.option(
        "30s", doc="the longest a remote call may take; past it: TaskTimeoutError (504)"
    )
    retries: int = assembler.option(
        2,
        doc="extra attempts for tasks marked `idempotent: true`, on a "
        "connection failure or a 502/503/504; other tasks are never retried",
        minimum=0,
        maximum=10,
    )
    max_connections: int = assembler.option(100, doc="the connection pool's size", minimum=1)


_RETRY_STATUS = {502, 503, 504}
#: Typed answers of a draining server (the task did not run, or was cut off past the
#: server's grace): worth sending again, to an idempotent task only, like a 503.
_DRAINING = {"runner.shutting_down"}


@dataclass(frozen=True)
class TunnelClient:
    """The value of a ``tunnel.client``: ``await client.task(id, input)`` and
    ``await client.event(id, payload)`` call the remote directly (no routing)."""

    url: str
    tasks: tuple[str, ...]
    events: tuple[str, ...]
    _task: Callable[[str, Any], Awaitable[Any]]
    _event: Callable[[str, Any], Awaitable[None]]

    def task(self, id: str, input: Any = None) -> Awaitable[Any]:
        return self._task(id, input)

    def event(self, id: str, payload: Any = None) -> Awaitable[None]:
        return self._event(id, payload)


async def connect(config: TunnelClientConfig) -> AsyncIterator[TunnelClient]:
    import httpx

    rt = runner.current_runtime.use()
    url = config.url.rstrip("/")
    timeout, retries, pool = config.timeout, config.retries, config.max_connections
    owner = f"tunnel.client {url}"
    http = httpx.AsyncClient(
        headers={TOKEN_HEADER: config.token},
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        follow_redirects=False,  # a redirect must not carry the token elsewhere
    )

    def failed(error: TunnelError, detail: str) -> TunnelError:
        """Log where the call went and why (operators need the URL); the error itself
        says neither, since it may reach an outside caller through an HTTP edge."""
        request = runner.current_request.try_use()
        rid = request.id if request is not None else "-"
        log.warning(
            "%s (request %s) via %s: %s", error.message, rid, url, detail, extra={"request_id": rid}
        )
        return error

    async def post(path: str, body: Any, name: str, what: str, idempotent: bool) -> Any:
        try:
            content = dump_bytes(body)
        except SerializerError as exc:
            raise TunnelError(
                f"{what}: the input cannot be sent: {exc}",
                hint="send JSON values, datetimes, sets, bytes (see docs/tunnels.md)",
            ) from None
        headers = {"content-type": "application/json; charset=utf-8"}
        request = runner.current_request.try_use()
        if request is not None and REQUEST_ID.match(request.id):
            headers[REQUEST_ID_HEADER] = request.id
        attempt = 0
        while True:
            try:
                return await _once(path, content, headers, name, what)
            except _Retryable as failure:
                if not idempotent or attempt >= retries:
                    raise failure.error from None
                attempt += 1
                await anyio.sleep(min(0.05 * 2**attempt, 1.0) * (0.5 + random.random() / 2))

    async def _once(
        path: str, content: bytes, headers: dict[str, str], name: str, what: str
    ) -> Any:
        if http.is_closed:  # a call made after the client was disposed
            raise TunnelUnavailable(
                f"{what}: the tunnel client is closed (the app is stopping)",
                hint="a resource that calls remote tasks while it stops must depend on them "
                "(it is then disposed before the client)",
            )
        try:
            with anyio.fail_after(timeout):  # the whole call, not each socket read
                response = await http.post(url + path, content=content, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            raise TaskTimeoutError(name, timeout) from None
        except httpx.TransportError as exc:
            down = TunnelUnavailable(
                f"{what}: the tunnel server cannot be reached",
                hint="check that it runs and that `url` is right (the log names both)",
            )
            raise _Retryable(failed(down, f"{type(exc).__name__}: {exc}")) from None
        status = response.status_code
        opened = open_envelope(response.content)
        if opened is not None and opened[0]:
            return opened[1]
        if opened is None:
            failure = TunnelError(
                f"{what}: the tunnel server answered HTTP {status} without a Runner envelope",
                hint="check that `url` points at a tunnel server, base path included",
            )
            failure = failed(failure, f"body starts {response.content[:120]!r}")
            if status in _RETRY_STATUS:
                raise _Retryable(failure)
            raise failure
        error = opened[1]
        code = error.get("id") or error.get("code")
        if code in _DRAINING:
            raise _Retryable(rebuild(error, status))
        if error.get("id") or (status == 500 and code == "INTERNAL_ERROR"):
            raise rebuild(error, status)
        failure = _refusal(error, status, what)
        if status in _RETRY_STATUS:
            raise _Retryable(failure)
        raise failure

    def _refusal(error: dict[str, Any], status: int, what: str) -> TunnelError:
        code = str(error.get("code") or f"HTTP_{status}")
        message = str(error.get("message") or "")
        hints = {
            "UNAUTHORIZED": "the server does not accept this `token`: check both ends",
            "AUTH_NOT_CONFIGURED": "the server has no `tokens` configured: it refuses "
            "every call until it has one",
            "FORBIDDEN": "add the id to the server's `tasks`/`events`",
            "NOT_FOUND": "check `url` (base path included) and the id",
            "PAYLOAD_TOO_LARGE": "send less, or raise the server's body limit",
        }
        refused = TunnelError(
            f"{what}: the tunnel server refused the call: {status} {code}",
            hint=hints.get(code, "see the server's log for this request"),
            remote_code=code,
        )
        return failed(refused, message)

    def task_caller(tid: str, idempotent: bool) -> Callable[[Any], Awaitable[Any]]:
        path = "/task/" + quote(tid, safe="")

        def call(input: Any) -> Awaitable[Any]:
            return post(path, {"input": input}, tid, f"remote task {tid!r}", idempotent)

        return call

    def event_sender(eid: str) -> Callable[[Any], Awaitable[None]]:
        path = "/event/" + quote(eid, safe="")

        async def send(payload: Any) -> None:
            if from_tunnel.get() == eid:  # it came in through a tunnel: do not send it back
                return
            await post(path, {"payload": payload}, eid, f"remote event {eid!r}", False)

        return send

    tasks = select(config.tasks or (), rt.store.tasks)
    events = select(config.events or (), rt.store.events)
    try:
        for tid in tasks:
            meta = rt.store.tasks[tid].meta or {}
            rt.route(tid, task_caller(tid, bool(meta.get("idempotent"))), owner=owner)
        for eid in events:
            rt.mirror(eid, event_sender(eid))

        async def direct_task(tid: str, input: Any) -> Any:
            return await task_caller(tid, False)(input)

        async def direct_event(eid: str, payload: Any) -> None:
            path = "/event/" + quote(eid, safe="")
            await post(path, {"payload": payload}, eid, f"remote event {eid!r}", False)

        yield TunnelClient(url, tuple(tasks), tuple(events), direct_task, direct_event)
    finally:
        with anyio.CancelScope(shield=True):
            await http.aclose()


class _Retryable(Exception):
    def __init__(self, error: BaseException) -> None:
        self.error = error
