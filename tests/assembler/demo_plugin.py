"""An in-process test plugin for the corpus: ``demo.cache``, ``demo.store``, ``demo.logger``.

Loaded with ``assembler.load_plugins(only=[], extra=[demo_plugin])``; no entry point.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler
import runner

__plugin_name__ = "demo"


async def cache_run(call: Any, config: Any) -> Any:
    return await call.next(call.input)


def store_init(config: Any) -> dict[str, Any]:
    return {}


def logger_init(config: Any) -> str:
    return "logger"


@assembler.hookimpl
def assemble_components() -> Sequence[assembler.Component | runner.Definition]:
    return [
        assembler.Component(
            name="demo.cache",
            kind="middleware",
            config_schema={
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "ttl": {"type": "number"},
                    "max_entries": {"type": "integer", "minimum": 1},
                },
            },
            run=cache_run,
        ),
        assembler.Component(
            name="demo.store",
            kind="resource",
            config_schema={
                "type": "object",
                "required": ["url"],
                "properties": {"url": {"type": "string"}},
            },
            init=store_init,
        ),
        runner.Resource("demo.logger", init=logger_init),
    ]
