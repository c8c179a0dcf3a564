"""Typed component configs (``assembler.option``, ``config_schema``, ``from_config``):
one class gives the JSON Schema, the defaults and the typed object."""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

import assembler


@dataclass(frozen=True)
class Peer:
    host: str = assembler.option(doc="the peer's host")
    port: int = assembler.option(8080, doc="its port", minimum=1, maximum=65535)


@dataclass(frozen=True)
class Everything:
    name: str = assembler.option(doc="a name", minLength=1)
    after: assembler.Duration = assembler.option("5s", doc="a wait")
    ratio: float = assembler.option(0.5, doc="a share", exclusiveMinimum=0)
    on: bool = assembler.option(True, doc="a switch")
    mode: Literal["fast", "safe"] = assembler.option("safe", doc="a choice")
    waits: list[assembler.Duration] = assembler.option(["1s", "2s"], doc="waits")
    peers: dict[str, Peer] = assembler.option({}, doc="named peers")
    backup: Peer | None = assembler.option(None, doc="a backup peer")
    extra: Any = assembler.option(None, doc="anything")


def test_the_schema_comes_from_the_class() -> None:
    schema = assembler.config_schema(Everything)
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["name"] == {"type": "string", "minLength": 1, "description": "a name"}
    assert props["after"] == {**assembler.DURATION, "description": "a wait", "default": "5s"}
    assert props["ratio"]["exclusiveMinimum"] == 0 and props["ratio"]["type"] == "number"
    assert props["mode"]["enum"] == ["fast", "safe"]
    assert props["waits"]["items"] == assembler.DURATION
    peer = props["peers"]["additionalProperties"]
    assert peer["required"] == ["host"] and peer["properties"]["port"]["maximum"] == 65535
    # None: an optional key, no default shown, not null
    assert props["backup"]["required"] == ["host"] and "default" not in props["backup"]
    assert props["extra"] == {"description": "anything"}
    assert set(schema["required"]) == {"name"}


def test_the_typed_object_has_defaults_seconds_and_nested_objects() -> None:
    config = assembler.from_config(
        Everything, {"name": "n", "waits": ["250ms"], "peers": {"a": {"host": "h"}}}
    )
    assert config.name == "n" and config.after == 5.0 and config.waits == [0.25]
    assert config.peers == {"a": Peer(host="h", port=8080)} and config.backup is None
    assert assembler.from_config(Everything, {"name": "n"}).waits == [1.0, 2.0]
    assert assembler.from_config(Everything, {"name": "n", "backup": {"host": "b"}}).backup == (
        Peer("b", 8080)
    )


def test_a_type_with_no_schema_is_refused_at_once() -> None:
    @dataclass(frozen=True)
    class Odd:
        when: complex = assembler.option(doc="?")

    with pytest.raises(TypeError, match="cannot be of type"):
        assembler.config_schema(Odd)


def test_converted_components_keep_their_schema() -> None:
    """What `assemble schema` printed before the classes, key for key."""
    loaded = assembler.load_plugins(only=["resilience"])
    assert loaded.components["timeout"].config_schema == {
        "type": "object",
        "properties": {
            "after": {
                **assembler.DURATION,
                "description": "the deadline of one call (e.g. 500ms, 5s); it must be above 0",
            },
        },
        "required": ["after"],
        "additionalProperties": False,
    }
    assert loaded.components["concurrency"].config_schema == {
        "type": "object",
        "properties": {
            "limit": {
                "type": "integer",
                "minimum": 1,
                "description": "how many runs may be in progress at once",
            },
        },
        "required": ["limit"],
        "additionalProperties": False,
    }
    retry = loaded.components["retry"].config_schema
    assert retry == {
        "type": "object",
        "properties": {
            "attempts": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "default": 3,
                "description": "how many times the task runs at most (1 = no retry)",
            },
            "backoff": {
                "enum": ["exponential", "linear", "constant"],
                "default": "exponential",
                "description": "how the delay grows: delay * 2^(n-1), delay * n, or delay",
            },
            "delay": {**assembler.DURATION, "default": "100ms", "description": "the base delay"},
            "max_delay": {
                **assembler.DURATION,
                "default": "2s",
                "description": "the cap on one delay",
            },
            "jitter": {
                "type": "boolean",
                "default": True,
                "description": "full jitter: each delay is random between 0 and the computed one",
            },
            "retry_on": {
                "type": "array",
                "items": {"type": "string"},
                "description": "exception classes to retry (import paths or builtin names, e.g. "
                "ConnectionError); default: every Exception but client errors (HTTP status < 500)",
            },
        },
        "additionalProperties": False,
    }


def test_the_example_in_docs_plugins_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    section = doc[doc.index("### Typed configs: one class") :]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert block is not None
    module = types.ModuleType("docs_example")  # dataclasses look their module up
    monkeypatch.setitem(sys.modules, "docs_example", module)
    exec(compile(block.group(1), "docs/plugins.md", "exec"), module.__dict__)
    scope = module.__dict__
    pool = scope["POOL"]
    assert pool.config_schema["required"] == ["url"]
    assert pool.config_schema["properties"]["idle"]["default"] == "30s"
    typed = assembler.from_config(scope["PoolConfig"], {"url": "db://x"})
    assert (typed.url, typed.size, typed.idle) == ("db://x", 10, 30.0)


def test_the_circuit_breaker_keeps_its_schema() -> None:
    loaded = assembler.load_plugins(only=["resilience"])
    assert loaded.components["circuit_breaker"].config_schema == {
        "type": "object",
        "properties": {
            "failure_threshold": {
                "type": "integer",
                "minimum": 1,
                "default": 5,
                "description": "consecutive failures that open the circuit",
            },
            "reset_after": {
                **assembler.DURATION,
                "default": "30s",
                "description": "how long the circuit stays open before one trial call",
            },
        },
        "additionalProperties": False,
    }


def test_a_typed_object_is_taken_as_it_is() -> None:
    peer = Peer("h", 1)
    assert assembler.from_config(Peer, peer) is peer
