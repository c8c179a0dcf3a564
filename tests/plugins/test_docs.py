"""Each built-in component type has a docs page whose config table matches its schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import assembler

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins"
BUILT_IN = {"auth", "cache", "http", "logging", "mongo", "redis", "resilience", "sql", "tunnel"}
PLUGINS = assembler.load_plugins(only=sorted(BUILT_IN))
TYPES = sorted(PLUGINS.components)
HEADER = "| key | type | default | meaning |"


def config_table(page: str) -> list[str]:
    """The keys (first-column backticked names) of the table under ``## Config``."""
    section = page.split("\n## Config\n", 1)
    assert len(section) == 2, "no `## Config` section"
    body = section[1].split("\n## ", 1)[0]
    assert HEADER in body, f"the config table's header must be {HEADER!r}"
    return re.findall(r"^\| `([^`]+)` \|", body, flags=re.MULTILINE)


def test_the_built_in_plugins_load_without_problems() -> None:
    assert PLUGINS.problems == []
    assert {i.name for i in PLUGINS.infos} == BUILT_IN
    assert set(TYPES) >= {
        "retry",
        "timeout",
        "rate_limit",
        "circuit_breaker",
        "concurrency",
        "fallback",
        "cache.memory",
        "cache.redis",
        "redis.client",
        "auth.jwt",
        "auth.rbac",
        "logger",
        "logging.tasks",
        "http.server",
        "http.route",
        "tunnel.server",
        "tunnel.client",
        "tunnel.nats",
        "sql.engine",
        "mongo.client",
    }


@pytest.mark.parametrize("name", TYPES)
def test_each_type_has_a_page_whose_config_table_is_its_schema(name: str) -> None:
    comp = PLUGINS.components[name]
    page = DOCS / f"{name}.md"
    assert page.is_file(), f"docs/plugins/{name}.md is missing"
    schema = comp.config_schema
    assert isinstance(schema, dict), f"{name} has no config schema"
    properties = schema.get("properties", {})
    keys = config_table(page.read_text())
    assert sorted(keys) == sorted(properties), f"docs/plugins/{name}.md's table vs the schema"
    assert len(keys) == len(set(keys)), "a key is listed twice"
    for key, prop in properties.items():
        assert prop.get("description"), f"{name}.{key} has no description in its schema"
    assert schema.get("additionalProperties") is False, f"{name}: unknown keys must be refused"


def test_the_index_links_every_page() -> None:
    index = (DOCS / "README.md").read_text()
    for name in TYPES:
        assert f"({name}.md)" in index, f"docs/plugins/README.md does not link {name}.md"
