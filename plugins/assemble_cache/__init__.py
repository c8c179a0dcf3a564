"""Built-in plugin ``cache``: ``cache.memory`` and ``cache.redis`` task middleware.

See docs/plugins/cache.memory.md and docs/plugins/cache.redis.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import assembler
import runner

from . import _memory, _redis
from ._keys import invalidating_events

__all__: list[str] = []


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return [*_memory.components(), *_redis.components()]


_CACHES = ("cache.memory", "cache.redis")


def _uses(manifest: assembler.Manifest) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(place, config) of every cache use: declared middleware and inline uses."""
    for _, body, at in manifest.components("middleware"):
        if body.get("use") in _CACHES:
            yield (*at, "config"), body.get("config")
    for _, body, at in manifest.components("tasks"):
        for i, entry in enumerate(body.get("middleware") or ()):
            if isinstance(entry, dict) and entry.get("use") in _CACHES:
                yield (*at, "middleware", i, "config"), entry.get("config")


@assembler.hookimpl
def assemble_validate(manifest: assembler.Manifest, report: assembler.Report) -> None:
    """Every event an ``invalidate_on`` names is declared."""
    events = {eid for eid, _, _ in manifest.components("events")}
    for at, config in _uses(manifest):
        listed = config.get("invalidate_on") if isinstance(config, dict) else None
        for i, eid in enumerate(listed if isinstance(listed, list) else ()):
            if isinstance(eid, str) and eid not in events:
                report(
                    f"invalidate_on names event {eid!r}, which is not declared",
                    at=(*at, "invalidate_on", i),
                    code="cache/unknown-event",
                    hint="declare it under `events:` (and emit it where the data changes), "
                    "or fix the id",
                )


@assembler.hookimpl
def assemble_compile(manifest: assembler.Manifest, definitions: list[Any]) -> Sequence[Any]:
    """A hook per cache use with ``invalidate_on``: the events empty that cache.

    It runs before the events' other hooks (order -inf), so they already miss."""
    hooks = []
    declared = {d.id for d in definitions if isinstance(d, runner.Event)}
    for d in definitions:
        if not isinstance(d, runner.TaskMiddleware) or d.meta.get("use") not in _CACHES:
            continue
        # An undeclared event is reported by assemble_validate, at its place.
        events = [e for e in invalidating_events(d.config) if e in declared]
        invalidate = getattr(d.run, "invalidate", None)
        if events and invalidate is not None:
            hooks.append(
                runner.Hook(
                    f"{d.id}[invalidate]",  # no manifest id has brackets
                    on=events,
                    run=invalidate,
                    order=float("-inf"),
                    dependencies={k: v for k, v in d.dependencies.items() if k == "redis"},
                    meta={"description": f"empties the cache {d.id!r}"},
                )
            )
    return hooks
