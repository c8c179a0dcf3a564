"""The config schemas of the built-in component types are a public contract (config keys,
types, defaults, rules): moving a component to a typed config class must not change
them. ``component_schemas.json`` holds them as they are; a deliberate change updates
it in the same commit (regenerate: ``python -m tests.assembler.test_component_schemas``)."""

from __future__ import annotations

import json
from pathlib import Path

import assembler

SNAPSHOT = Path(__file__).with_name("component_schemas.json")


def current() -> dict[str, object]:
    loaded = assembler.load_plugins()
    return {name: c.config_schema for name, c in sorted(loaded.components.items())}


def test_every_built_in_config_schema_is_unchanged() -> None:
    # JSON round trip: tuples and lists compare alike, as `assemble schema` prints them
    now = json.loads(json.dumps(current(), sort_keys=True))
    assert now == json.loads(SNAPSHOT.read_text())


if __name__ == "__main__":  # python -m tests.assembler.test_component_schemas
    SNAPSHOT.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
