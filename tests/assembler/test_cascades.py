"""One mistake, one diagnostic: a failed ``${...}`` is not reported again by the checks of
the values it fed (a schema type error, a plugin's own check that would crash on null)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import assembler


def check_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[Any]:
    """``(code, line, col, message)`` of each diagnostic (and none compiled on an error)."""
    manifest = tmp_path / "app.yaml"
    manifest.write_text(textwrap.dedent(text))
    checked = assembler.check(str(manifest), assembler.load_plugins(), env=env or {})
    assert checked.ok == (checked.app is not None) == (not checked.diagnostics)
    return [(d.code, d.line, d.col, d.message) for d in checked.diagnostics]


JWT_THROUGH_CONFIG = """\
    assemble: 1
    id: app
    config:
      secret: ${env.CASCADE_SECRET}
    middleware:
      jwt: {use: auth.jwt, config: {secret: "${config.secret}", algorithms: [HS256]}}
    """


def test_a_missing_variable_behind_a_config_value_is_one_diagnostic(tmp_path: Path) -> None:
    found = check_text(tmp_path, JWT_THROUGH_CONFIG)
    assert [f[:3] for f in found] == [("ASM301", 4, 11)]


def test_a_set_variable_still_gets_the_plugins_checks(tmp_path: Path) -> None:
    found = check_text(tmp_path, JWT_THROUGH_CONFIG, {"CASCADE_SECRET": "too-short"})
    assert [f[:3] for f in found] == [("ASM603", 6, 41)]
    assert "shorter than 32 bytes" in found[0][3]
    assert "too-short" not in found[0][3]  # an env value: redacted


def test_a_missing_duration_is_one_diagnostic_directly_or_through_config(
    tmp_path: Path,
) -> None:
    found = check_text(
        tmp_path,
        """\
        assemble: 1
        id: app
        config:
          ttl: ${env.CASCADE_UNSET_TTL}
        middleware:
          direct: {use: cache.memory, config: {ttl: "${env.CASCADE_UNSET_TTL}"}}
          through: {use: cache.memory, config: {ttl: "${config.ttl}"}}
        """,
    )
    assert [f[:3] for f in found] == [("ASM301", 4, 8), ("ASM301", 6, 45)]


def test_a_whole_map_reference_keeps_the_diagnostics_of_what_did_resolve(
    tmp_path: Path,
) -> None:
    found = check_text(
        tmp_path,
        """\
        assemble: 1
        id: app
        config:
          c: {ttl: "${env.CASCADE_UNSET_TTL}", max_entrie: 5}
        middleware:
          m: {use: cache.memory, config: "${config.c}"}
        """,
    )
    codes = [(code, line) for code, line, _, _ in found]
    assert ("ASM301", 4) in codes
    assert any("max_entrie" in message for *_, message in found)  # a typo, not a cascade
    assert not any("null" in message for *_, message in found)
    assert len(found) == 2, found


def test_sibling_inline_uses_each_get_their_own_checks(tmp_path: Path) -> None:
    found = check_text(
        tmp_path,
        """\
        assemble: 1
        id: app
        tasks:
          t:
            run: builtins:print
            middleware:
              - {use: cache.memory, config: {ttl: 60s, max_entries: 0}}
              - {use: rate_limit, config: {max_requests: 1, window: 0s}}
        """,
    )
    assert [(code, line) for code, line, _, _ in found] == [("ASM603", 7), ("ASM603", 8)], found


def test_a_failure_two_config_values_away_is_still_one_diagnostic(tmp_path: Path) -> None:
    found = check_text(
        tmp_path,
        """\
        assemble: 1
        id: app
        config:
          a: ${env.CASCADE_UNSET_TTL}
          b: ${config.a}
          c: {ttl: "${config.b}"}
        middleware:
          whole: {use: cache.memory, config: "${config.c}"}
          text: {use: cache.memory, config: {ttl: "${config.b}s"}}
        """,
    )
    assert [f[:3] for f in found] == [("ASM301", 4, 6)]
