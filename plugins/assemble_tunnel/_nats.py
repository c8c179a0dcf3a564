"""``tunnel.nats``: remote tasks and events across processes on NATS (nats-py).

The same routing model as the HTTP tunnel, on a message bus instead of one server:

- **serve**: this process subscribes to ``{prefix}.task.{id}`` for each task it serves,
  in the queue group ``workers``: N processes serving one task share its calls (NATS
  hands each request to one member of the group).
- **call**: the task is routed (``rt.route``) to a NATS request/reply on that subject,
  bounded by ``timeout``. With nobody listening, NATS answers at once (no responders):
  ``TunnelUnavailable`` without waiting for the timeout.
- **events**: mirrored to every node: after the local hooks ran, the payload is
  published on ``{prefix}.event.{id}``; every other node emits it locally (a node
  ignores its own messages; an event that arrived from the bus is not published again).

Payloads and the error envelope are the HTTP tunnel's (Runner's serializer tree format,
``{"ok": ..., "result"/"error": ...}``), so typed errors come back typed. Calls are
at-most-once: a call whose worker dies is not answered; it fails with
``TaskTimeoutError`` at ``timeout``, or is sent again (to another worker) when the task
is marked ``idempotent: true``.

Shutdown: the runtime stops taking work (``wait_stopping``), the subscriptions are
drained (no new requests are taken; those already delivered finish and are answered),
then the connection closes. asyncio only (nats-py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote

import anyio

import assembler
import runner
from runner.errors import ShuttingDown, TaskTimeoutError, ValidationError

from ._serializer import SerializerError, dump_bytes, loads
from ._wire import (
    IDS,
    INTERNAL,
    MAX_MESSAGE,
    REQUEST_ID,
    TunnelError,
    TunnelUnavailable,
    cut,
    dump_envelope,
    failure,
    failures,
    from_tunnel,
    open_envelope,
    rebuild,
    select,
)

log = logging.getLogger("assemble.tunnel")

QUEUE = "workers"
REFUSED = "tunnel.refused"  # a stopping worker's answer to a call it did not start
ORIGIN = "x-assemble-origin"
REQUEST_ID_HEADER = "x-runner-request-id"
SUBJECT_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


@dataclass(frozen=True)
class NatsConfig:
    """``tunnel.nats``'s config."""

    url: str = assembler.option(
        "nats://127.0.0.1:4222",
        doc="the NATS server (`nats://user:password@host:4222`), or a "
        "cluster's servers separated by commas",
        pattern="^(nats|tls|ws|wss)://",
    )
    serve: list[str] | None = assembler.option(
        None,
        doc="ids or globs of the tasks this process serves (in the queue "
        "group `workers`: the processes serving a task share its calls)",
        schema=IDS,
    )
    call: list[str] | None = assembler.option(
        None,
        doc="ids or globs of the tasks routed to whoever serves them (declare them `remote: true`)",
        schema=IDS,
    )
    events: list[str] | None = assembler.option(
        None,
        doc="ids or globs of the events mirrored to every node (at most once)",
        schema=IDS,
    )
    durable_events: list[str] | None = assembler.option(
        None,
        doc="ids or globs of the events delivered through JetStream: "
        "at least once, to one of the processes listing them, acknowledged after "
        "its hooks ran",
        schema=IDS,
    )
    ack_wait: assembler.Duration = assembler.option(
        "30s",
        doc="how long a consumer may go silent before JetStream delivers "
        "its event again, maybe elsewhere (while hooks run it is told they do, every "
        "ack_wait / 2)",
    )
    max_deliver: int = assembler.option(
        5,
        doc="deliveries of one durable event before JetStream gives up on "
        "it (its hooks keep failing); it is logged each time",
        minimum=1,
    )
    timeout: assembler.Duration = assembler.option(
        "30s", doc="the longest a remote call may take; past it: TaskTimeoutError (504)"
    )
    connect_timeout: assembler.Duration = assembler.option(
        "10s",
        doc="how long init tries to reach NATS before the app fails to "
        "start (once running, a lost connection is retried for ever)",
    )
    retries: int = assembler.option(
        2,
        doc="extra attempts for tasks marked `idempotent: true`, when no "
        "answer came within `timeout` (a worker died) or nobody served the task",
        minimum=0,
        maximum=10,
    )
    max_in_flight: int = assembler.option(
        256, doc="calls this process serves at once; more wait in NATS", minimum=1
    )
    subject_prefix: str = assembler.option(
        "assemble",
        doc="the first tokens of every subject (one per app or environment)",
        pattern="^[A-Za-z0-9_\\-]+(\\.[A-Za-z0-9_\\-]+)*$",
    )


class NatsTunnelError(TunnelError):
    """``tunnel.nats`` could not start: NATS is unreachable, or an id is not a subject."""

    code = "tunnel.nats_failed"


_NEXT_SERVER = re.compile(r",\s*(?=(?:nats|tls|ws|wss)://)")


def servers(url: str) -> list[str]:
    """The servers of ``url``: one, or a cluster's, separated by commas. A comma counts
    only before a scheme, so a password may hold one."""
    return [part.strip() for part in _NEXT_SERVER.split(url.strip().strip(",")) if part.strip()]


def credentials(server: str) -> tuple[str, str | None, str | None]:
    """``(server without credentials, user, password)``, percent-decoded.

    The credentials run to the LAST ``@`` before the host, so a password may hold ``@``,
    ``/``, ``#`` or ``?`` unescaped (nats-py's URL parsing would cut it short, and passes
    percent-escapes on undecoded). A user with no password is a token."""
    scheme, sep, rest = server.partition("://")
    creds, at, hosts = rest.rpartition("@")
    if not (sep and at):
        return server, None, None
    user, colon, password = creds.partition(":")
    return f"{scheme}{sep}{hosts}", unquote(user), unquote(password) if colon else None


class DroppedEvent(TunnelError):
    """An event received from NATS that no hook may see (its ``detail`` is logged once
    per kind: a publisher flooding bad payloads fills no disk)."""

    code = "tunnel.dropped_event"

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def _dropped(exc: Exception) -> DroppedEvent:
    if isinstance(exc, SerializerError):
        why = "dropped: its payload is not Runner's serializer format"
    else:
        why = "dropped: its payload breaks the boundary rule (no hook ran)"
    return DroppedEvent(why, cut(str(exc), MAX_MESSAGE))


def _rid(msg: Any) -> str:
    given = (msg.headers or {}).get(REQUEST_ID_HEADER, "")
    return given if REQUEST_ID.match(given) else uuid.uuid4().hex


def safe_url(url: str) -> str:
    """``url`` with every password (or token) shown as ``***``, for messages and logs."""
    shown = []
    for server in servers(url):
        bare, user, password = credentials(server)
        if user is None and password is None:
            shown.append(server)
            continue
        scheme, _, hosts = bare.partition("://")
        who = "***" if password is None else f"{user}:***"
        shown.append(f"{scheme}://{who}@{hosts}")
    return ",".join(shown)


async def connect(config: NatsConfig) -> AsyncIterator[Any]:
    assembler.require_asyncio(NatsTunnelError, "tunnel.nats", "nats-py runs on asyncio only")
    assembler.require_library(
        "tunnel.nats", "nats", extra="nats", library="nats-py", error=NatsTunnelError
    )
    from nats.aio.client import Client
    from nats.errors import AuthorizationError, NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout

    rt = runner.current_runtime.use()
    url, prefix, timeout = config.url, config.subject_prefix, config.timeout
    connect_within, retries = config.connect_timeout, config.retries
    limit = anyio.Semaphore(config.max_in_flight)
    origin = uuid.uuid4().hex  # this process, on the bus
    serve = select(config.serve or (), rt.store.tasks)
    call = select(config.call or (), rt.store.tasks)
    events = select(config.events or (), rt.store.events)
    durable = select(config.durable_events or (), rt.store.events)
    ack_wait, max_deliver = config.ack_wait, config.max_deliver
    for kind, ids in (("task", serve + call), ("event", events + durable)):
        for i in ids:
            if not SUBJECT_TOKEN.match(i):
                raise NatsTunnelError(
                    f"tunnel.nats cannot carry {kind} {i!r}: its id is not a NATS subject",
                    hint="use ids of letters, digits, `_`, `-` and dots",
                )

    last_error: list[Exception] = []

    def refused_login(exc: BaseException) -> bool:  # nats-py reports it either way
        return isinstance(exc, AuthorizationError) or "authorization violation" in str(exc).lower()

    async def on_error(exc: Exception) -> None:  # nats-py would print to stderr
        if not (last_error and refused_login(last_error[0])):
            last_error[:] = [exc]  # a refused login says more than the reset after it
        log.warning("tunnel.nats: %s: %s", type(exc).__name__, exc)

    # Credentials go to nats-py as options, not inside the URLs (see `credentials`).
    split = [credentials(server) for server in servers(url)]
    given = {(user, password) for _, user, password in split if user is not None}
    if len(given) > 1:
        raise NatsTunnelError(
            f"tunnel.nats: the servers of {safe_url(url)} name different credentials",
            hint="a cluster takes one user and password (or token): write them once, on "
            "every server or on the first",
        )
    auth: dict[str, Any] = {}
    for user, password in given:
        auth = {"token": user} if password is None else {"user": user, "password": password}

    # nats-py, told to reconnect forever (what a running app wants), also retries its
    # FIRST connection forever: init would hang on a wrong URL. `connect_timeout` bounds it.
    nc = Client()
    try:
        with anyio.fail_after(connect_within):
            await nc.connect(
                [bare for bare, _, _ in split],
                error_cb=on_error,
                # a float works (it goes to asyncio.wait_for); the stub says int
                connect_timeout=min(timeout, connect_within, 5.0),  # type: ignore[arg-type]
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                name=f"assemble {rt.store.root.id}",
                **auth,
            )
    except BaseException as exc:
        # what a half-made connection started, also when startup was cancelled (a signal)
        with anyio.CancelScope(shield=True), anyio.move_on_after(2), contextlib.suppress(Exception):
            await nc.close()
        if not isinstance(exc, Exception):
            raise
        timed_out = isinstance(exc, TimeoutError)
        cause = last_error[0] if timed_out and last_error else exc
        detail = f"{type(cause).__name__}: {cause}".rstrip(": ")
        tried = f" (tried for {connect_within:g}s)" if timed_out else ""
        refused = refused_login(cause)
        raise NatsTunnelError(
            f"tunnel.nats cannot reach NATS at {safe_url(url)}{tried}: {detail}",
            hint="NATS refused the credentials: fix the user and password (or token) in `url`"
            if refused
            else "start nats-server, or fix `url` (and its user and password)",
        ) from None

    def subject(kind: str, id: str) -> str:
        return f"{prefix}.{kind}.{id}"

    # -- serving ----------------------------------------------------------------------

    async def answer(msg: Any, tid: str, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        headers = msg.headers or {}
        given = headers.get(REQUEST_ID_HEADER, "")
        rid = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        started = False
        async with limit:
            try:
                # accepted before the subscription's callback returns: a call delivered
                # before shutdown began is drained, not refused
                async with rt.accepted(f"NATS call of {tid!r}"):
                    started = True
                    task_status.started()
                    body = loads(msg.data, cycles=False) if msg.data else None
                    if isinstance(body, dict) and "input" in body:
                        body = body["input"]
                    runner.check_boundary(body, what="input", owner=tid)
                    request = runner.Request(rid, dict(headers), "nats")
                    with runner.current_request.provide(request):
                        result = await rt.run_task(tid, body)
                    reply: dict[str, Any] = {"ok": True, "result": result}
            except SerializerError:
                error = {"code": "INVALID_JSON", "message": "Invalid JSON body"}
                reply = {"ok": False, "error": error}
            except ShuttingDown as exc:
                if started:  # raised inside the task: it ran (in part); not retryable
                    reply = failure(exc, f"NATS call of {tid!r}", rid)[1]
                else:  # refused before it ran: the caller may send it elsewhere
                    error = {"code": REFUSED, "message": f"this worker is stopping: {exc.message}"}
                    reply = {"ok": False, "error": error}
            except Exception as exc:
                reply = failure(exc, f"NATS call of {tid!r}", rid)[1]
            finally:
                if not started:  # refused (shutting down): the subscription goes on
                    task_status.started()
            data, _ = dump_envelope(reply, rid)
            if len(data) > nc.max_payload:  # NATS would refuse it: the caller would wait
                big = TunnelError(f"the answer is over NATS's max_payload ({nc.max_payload:,} B)")
                failures.failed(f"tunnel: NATS call of {tid!r}", rid, big)
                data = dump_bytes({"ok": False, "error": INTERNAL})
            if msg.reply:
                try:
                    await msg.respond(data)
                except Exception as exc:  # the connection is gone: the caller times out
                    log.warning("tunnel.nats: could not answer a call of %r: %s", tid, exc)

    async def deliver(msg: Any, eid: str) -> None:
        if (msg.headers or {}).get(ORIGIN) == origin:
            return  # our own publication: the local hooks already ran
        try:
            payload = loads(msg.data, cycles=False) if msg.data else None
            runner.check_boundary(payload, what="payload", owner=eid)
        except (SerializerError, ValidationError) as exc:
            failures.failed(f"tunnel.nats: event {eid!r}", _rid(msg), _dropped(exc))
            return
        except Exception as exc:  # a reader's bug must not end the subscriptions
            log.error("tunnel.nats: dropped a %r event it failed to read", eid, exc_info=exc)
            return
        token = from_tunnel.set(eid)
        try:
            await rt.emit(eid, payload)
        except ShuttingDown:
            pass  # arrived while stopping: at most once, so it is dropped
        except Exception as exc:
            log.error("tunnel.nats: hooks of event %r failed", eid, exc_info=exc)
        finally:
            from_tunnel.reset(token)

    # -- calling ----------------------------------------------------------------------

    def caller(tid: str, idempotent: bool) -> Callable[[Any], Awaitable[Any]]:
        to = subject("task", tid)

        async def call_remote(input: Any) -> Any:
            try:
                data = dump_bytes({"input": input})
            except SerializerError as exc:
                raise TunnelError(
                    f"remote task {tid!r}: the input cannot be sent: {exc}",
                    hint="send JSON values, datetimes, sets, bytes (see docs/tunnels.md)",
                ) from None
            headers = {ORIGIN: origin}
            request = runner.current_request.try_use()
            if request is not None and REQUEST_ID.match(request.id):
                headers[REQUEST_ID_HEADER] = request.id
            try:
                reply = await nc.request(to, data, timeout=timeout, headers=headers)
            except NoRespondersError:
                raise TunnelUnavailable(
                    f"remote task {tid!r}: no process serves it on NATS",
                    hint="start a worker whose tunnel.nats `serve` lists it",
                ) from None
            except NatsTimeout:
                raise TaskTimeoutError(tid, timeout) from None
            opened = open_envelope(reply.data)
            if opened is None:
                raise TunnelError(
                    f"remote task {tid!r}: the answer is not a Runner envelope",
                    hint="something else answers this subject: give the app a "
                    "`subject_prefix` of its own",
                )
            ok, body = opened
            if ok:
                return body
            error = body
            if error.get("code") == REFUSED:
                raise TunnelUnavailable(
                    f"remote task {tid!r}: the worker that took it is stopping",
                    hint="it did not run; it is sent to another worker",
                    remote_code=REFUSED,
                )
            status = error.get("httpCode")
            raise rebuild(error, status if isinstance(status, int) else 500)

        async def call_with_retries(input: Any) -> Any:
            attempt = 0
            while True:
                try:
                    return await call_remote(input)
                except (TunnelUnavailable, TaskTimeoutError) as exc:
                    refused = isinstance(exc, TunnelError) and exc.remote_code == REFUSED
                    # refused by a stopping worker before it ran: safe for any task; no
                    # one served it, or no answer in time (a worker died): only for a
                    # task that may run twice
                    if not (refused or idempotent) or attempt >= retries:
                        raise
                    failure: BaseException = exc
                attempt += 1
                log.info("tunnel.nats: %r again after %s", tid, type(failure).__name__)
                await anyio.sleep(min(0.05 * 2**attempt, 1.0))

        return call_with_retries

    def publisher(eid: str) -> Callable[[Any], Awaitable[None]]:
        to = subject("event", eid)

        async def publish(payload: Any) -> None:
            if from_tunnel.get() == eid:
                return  # it came from the bus: not sent out again
            await nc.publish(to, dump_bytes(payload), headers={ORIGIN: origin})

        return publish

    # -- durable events (JetStream) ------------------------------------------------------

    stream = stream_name(prefix)

    def durable_publisher(eid: str) -> Callable[[Any], Awaitable[None]]:
        to = subject("durable", eid)

        async def publish(payload: Any) -> None:
            assert js is not None
            try:
                await js.publish(to, dump_bytes(payload), headers={ORIGIN: origin})  # stored
            except SerializerError:
                raise
            except Exception as exc:
                raise TunnelUnavailable(
                    f"durable event {eid!r} could not be stored: {type(exc).__name__}: {exc}",
                    hint="check that NATS (with JetStream) runs",
                ) from None

        return publish

    async def consume(eid: str, psub: Any) -> None:
        """Pull the event, run its hooks here, acknowledge; a failure is delivered again."""
        while not rt.shutting_down:
            try:
                batch = await psub.fetch(batch=1, timeout=0.5)  # returns on the first
            except NatsTimeout:
                continue
            except Exception as exc:  # the connection is reconnecting
                log.warning("tunnel.nats: fetching %r failed: %s", eid, exc)
                await anyio.sleep(0.5)
                continue
            for msg in batch:
                try:
                    payload = loads(msg.data, cycles=False) if msg.data else None
                    runner.check_boundary(payload, what="payload", owner=eid)
                except (SerializerError, ValidationError) as exc:
                    # terminated, never delivered again; logged once per kind, then counted
                    failures.failed(f"tunnel.nats: durable event {eid!r}", _rid(msg), _dropped(exc))
                    await _settle(msg.term())
                    continue
                except Exception as exc:  # a reader's bug must not end the consumer
                    log.error(
                        "tunnel.nats: dropped a durable %r it failed to read", eid, exc_info=exc
                    )
                    await _settle(msg.term())
                    continue
                token = from_tunnel.set(eid)
                try:
                    await _with_progress(rt.deliver(eid, payload), msg, ack_wait)
                except ShuttingDown:
                    await _settle(msg.nak())  # another process takes it
                    continue
                except Exception as exc:
                    tries = getattr(msg.metadata, "num_delivered", 0)
                    log.error(
                        "tunnel.nats: hooks of durable event %r failed (delivery %s of %s)",
                        eid,
                        tries,
                        max_deliver,
                        exc_info=exc,
                    )
                    if tries >= max_deliver:
                        log.error(
                            "tunnel.nats: durable event %r failed %s times: given up "
                            "(it stays in the stream %s)",
                            eid,
                            tries,
                            stream,
                        )
                    await _settle(msg.nak(delay=min(2.0**tries, 30.0)))
                    continue
                finally:
                    from_tunnel.reset(token)
                await _settle(msg.ack())

    subscriptions: list[Any] = []
    owner = f"tunnel.nats {safe_url(url)}"
    hooked = {e for h in rt.store.hooks.values() for e in _hook_events(h)}
    js = nc.jetstream() if durable else None
    try:
        async with anyio.create_task_group() as tg:

            def served(tid: str) -> Callable[[Any], Awaitable[None]]:
                async def on_call(msg: Any) -> None:
                    await tg.start(partial(answer, msg, tid))  # returns once accepted

                return on_call

            def mirrored(eid: str) -> Callable[[Any], Awaitable[None]]:
                async def on_event(msg: Any) -> None:
                    tg.start_soon(deliver, msg, eid)

                return on_event

            # Routing now, so calls made during startup go out; taking work only once
            # the whole app runs (a worker must not serve before its resources are up).
            for eid in events:
                rt.mirror(eid, publisher(eid))
            for tid in call:
                meta = rt.store.tasks[tid].meta or {}
                rt.route(tid, caller(tid, bool(meta.get("idempotent"))), owner=owner)
            consumers: list[tuple[str, Any]] = []
            if js is not None:
                await _stream(js, stream, f"{prefix}.durable.>")
                for eid in durable:
                    rt.divert(eid, durable_publisher(eid))
                    if "*" not in hooked and eid not in hooked:
                        continue  # no hooks here: publish only, leave the events to others
                    name = _consumer_name(eid)
                    await _consumer(
                        js, stream, name, subject("durable", eid), ack_wait, max_deliver
                    )
                    psub = await js.pull_subscribe_bind(name, stream=stream)
                    consumers.append((eid, psub))

            async def take_work() -> None:
                await rt.wait_running()
                if rt.shutting_down:
                    return
                for tid in serve:
                    sub = await nc.subscribe(subject("task", tid), queue=QUEUE, cb=served(tid))
                    subscriptions.append(sub)
                for eid in events:
                    subscriptions.append(
                        await nc.subscribe(subject("event", eid), cb=mirrored(eid))
                    )
                for eid, psub in consumers:
                    tg.start_soon(consume, eid, psub)
                await nc.flush()
                await rt.wait_stopping()
                for sub in subscriptions:  # stop taking work; what arrived is answered
                    with contextlib.suppress(Exception):  # closed by a lost connection
                        await sub.drain()

            tg.start_soon(take_work)
            try:
                yield nc  # on exit the group waits for the answers still being sent
            finally:
                if not rt.shutting_down:  # startup failed elsewhere: never took work
                    tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            # the subscriptions were drained when shutdown began and the answers sent:
            # flush what is still buffered (events, acks), then close
            with contextlib.suppress(Exception):
                await nc.flush(timeout=2)
            await nc.close()


def stream_name(prefix: str) -> str:
    """The JetStream stream of ``prefix``'s durable events: readable, and one per prefix
    (``a.b`` and ``a_b`` differ by the digest)."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", prefix)
    return f"{readable}_{hashlib.sha256(prefix.encode()).hexdigest()[:8]}_DURABLE"


def _consumer_name(eid: str) -> str:
    """One durable consumer per event id (``a.b`` and ``a_b`` differ by the digest)."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", eid)
    return f"{readable}_{hashlib.sha256(eid.encode()).hexdigest()[:8]}"


def _hook_events(hook: Any) -> set[str]:
    on = hook.on
    items = on if isinstance(on, list | tuple) else [on]
    return {i if isinstance(i, str) else i.id for i in items}


async def _with_progress(work: Awaitable[Any], msg: Any, ack_wait: float) -> None:
    """Await ``work`` (the hooks), telling JetStream every ``ack_wait / 2`` that the event
    is still being handled: hooks slower than ``ack_wait`` are not delivered again
    elsewhere while they run."""

    async def keep_alive() -> None:
        while True:
            await anyio.sleep(ack_wait / 2)
            with contextlib.suppress(Exception):  # a lost connection: JetStream redelivers
                await msg.in_progress()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_alive)
            try:
                await work
            except BaseException as exc:
                failure: BaseException | None = exc
            else:
                failure = None
            scope.cancel()  # stops the pings; the group then ends without an error
    if failure is not None:
        raise failure  # as the hooks raised it (not wrapped in a group)


async def _settle(ack: Awaitable[Any]) -> None:
    """Ack/nak/term; a failure (a lost connection) only means JetStream redelivers."""
    try:
        await ack
    except Exception as exc:
        log.warning("tunnel.nats: could not settle a durable event: %s", exc)


async def _stream(js: Any, name: str, subjects: str) -> None:
    """The work-queue stream of the durable events (made once; kept across restarts)."""
    from nats.js.api import RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=name,
                subjects=[subjects],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
            )
        )


async def _consumer(
    js: Any, stream: str, name: str, subject: str, ack_wait: float, max_deliver: int
) -> None:
    """Create the durable consumer, or update it to this config (a changed `ack_wait`
    or `max_deliver` applies on the next start)."""
    from nats.js.api import AckPolicy, ConsumerConfig

    config = ConsumerConfig(
        durable_name=name,
        filter_subject=subject,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
    )
    try:
        await js.add_consumer(stream, config=config)
    except Exception as exc:
        raise NatsTunnelError(
            f"tunnel.nats cannot set up the durable consumer {name!r} of {stream!r}: {exc}",
            hint="its settings may conflict with an existing consumer: delete it (nats "
            "consumer rm) or use another subject_prefix",
        ) from None
