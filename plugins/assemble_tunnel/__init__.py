"""Built-in plugin ``tunnel``: ``tunnel.server`` and ``tunnel.client``, BlueLibs Runner 5.5's
HTTP tunnel (wire-compatible with Runner's ``nodeExposure`` and ``createHttpClient``).

See docs/plugins/tunnel.server.md, docs/plugins/tunnel.client.md and docs/tunnels.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import assembler
import runner

from . import _nats
from ._client import TunnelClient, TunnelClientConfig, connect
from ._serializer import SerializerError, dumps, loads
from ._server import TunnelServer, TunnelServerConfig, serve
from ._wire import RemoteError, TunnelError, TunnelUnavailable, is_glob, select

__all__ = [
    "RemoteError",
    "SerializerError",
    "TunnelClient",
    "TunnelError",
    "TunnelServer",
    "TunnelUnavailable",
    "dumps",
    "loads",
]


def _check_server(config: Any, report: assembler.ConfigReport) -> None:
    report.require_library(
        "tunnel.server", ["starlette", "uvicorn"], extra="http", library="Starlette and uvicorn"
    )


def _check_client(config: Any, report: assembler.ConfigReport) -> None:
    report.require_library("tunnel.client", "httpx", extra="http", library="httpx")


def _check_nats(config: Any, report: assembler.ConfigReport) -> None:
    for key in ("connect_timeout", "timeout"):
        if isinstance(config, dict) and key in config and assembler.duration(config[key]) < 0.001:
            report(f"{key} must be at least 1ms", at=(key,), hint=f"e.g. `{key}: 5s`")
    report.require_library("tunnel.nats", "nats", extra="nats", library="nats-py")


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return [
        assembler.Component(
            name="tunnel.server",
            kind="resource",
            config=TunnelServerConfig,
            init=serve,
            check=_check_server,
            description="serves the listed tasks and events over Runner's HTTP tunnel protocol",
        ),
        assembler.Component(
            name="tunnel.nats",
            kind="resource",
            config=_nats.NatsConfig,
            init=_nats.connect,
            check=_check_nats,
            description="serves and calls tasks, mirrors events, across processes on NATS",
        ),
        assembler.Component(
            name="tunnel.client",
            kind="resource",
            config=TunnelClientConfig,
            init=connect,
            check=_check_client,
            description="runs the listed tasks on a remote tunnel server; mirrors events to it",
        ),
    ]


@assembler.hookimpl
def assemble_validate(manifest: assembler.Manifest, report: assembler.Report) -> None:
    """Listed ids exist; a task is routed by one client; every ``remote`` task is routed."""
    ids = {
        "tasks": {tid for tid, _, _ in manifest.components("tasks")},
        "events": {eid for eid, _, _ in manifest.components("events")},
    }
    routed: dict[str, str] = {}
    for rid, body, at in manifest.components("resources"):
        use = body.get("use")
        if use not in ("tunnel.server", "tunnel.client", "tunnel.nats"):
            continue
        config = body.get("config")
        config = config if isinstance(config, dict) else {}
        sections = ("serve", "call", "events") if use == "tunnel.nats" else ("tasks", "events")
        for section in sections:
            listed = config.get(section)
            if not isinstance(listed, list):
                continue
            for i, pattern in enumerate(listed):
                if not isinstance(pattern, str) or is_glob(pattern):
                    continue
                pool = ids["events" if section == "events" else "tasks"]
                if pattern not in pool:
                    kind = "event" if section == "events" else "task"
                    hint = (
                        "declare it under `tasks:` with `remote: true` (it runs elsewhere)"
                        if (use, section) in (("tunnel.client", "tasks"), ("tunnel.nats", "call"))
                        else f"declare the {kind} in this manifest, or fix the id"
                    )
                    report(
                        f"{use} {rid!r} lists {kind} {pattern!r}, which is not declared",
                        at=(*at, "config", section, i),
                        code="tunnel/unknown-id",
                        hint=hint,
                    )
            if (use, section) in (("tunnel.client", "tasks"), ("tunnel.nats", "call")):
                for tid in select([p for p in listed if isinstance(p, str)], ids["tasks"]):
                    other = routed.setdefault(tid, rid)
                    if other != rid:
                        report(
                            f"task {tid!r} is routed by both {other!r} and {rid!r}",
                            at=(*at, "config", section),
                            code="tunnel/routed-twice",
                            hint="a task runs on one remote: route it from one tunnel only",
                        )
    for tid, body, at in manifest.components("tasks"):
        if body.get("remote") is True and tid not in routed:
            report(
                f"task {tid!r} is `remote: true` but no tunnel routes it: every call would fail",
                at=(*at, "remote"),
                code="tunnel/not-routed",
                hint="add the id (or a glob) to a tunnel.client's `tasks` or a tunnel.nats's "
                "`call`, or give the task a `run`",
            )


@assembler.hookimpl
def assemble_compile(manifest: assembler.Manifest, definitions: list[Any]) -> Sequence[Any]:
    """Each ``remote`` task a tunnel.client routes depends on that client, so whatever
    depends on the task starts after the client (and stops before it): a resource may
    call a remote task in its ``init`` or its disposer."""
    clients: list[tuple[str, list[str]]] = []
    for rid, body, _ in manifest.components("resources"):
        config = body.get("config")
        key = {"tunnel.client": "tasks", "tunnel.nats": "call"}.get(str(body.get("use")))
        if key and isinstance(config, dict):
            listed = config.get(key)
            if isinstance(listed, list):
                clients.append((rid, [p for p in listed if isinstance(p, str)]))
    if not clients:
        return []
    tasks = {d.id: d for d in definitions if isinstance(d, runner.Task) and d.remote}
    changed = []
    for rid, patterns in clients:
        for tid in select(patterns, tasks):
            task = tasks[tid]
            deps = {**task.dependencies, "__tunnel_client__": rid}
            changed.append(dataclasses.replace(task, dependencies=deps))
    return changed
