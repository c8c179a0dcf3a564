"""One mistake, one diagnostic: a failed ``${...}`` is not reported again by the checks of
the values it fed (a schema type error, a plugin's own check that would crash on null)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import assembler


def test_a_missing_variable_behind_a_config_value_is_one_diagnostic(tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        textwrap.dedent(
            """\
            assemble: 1
            id: app
            config:
              secret: ${env.CASCADE_UNSET_SECRET}
            middleware:
              jwt: {use: auth.jwt, config: {secret: "${config.secret}", algorithms: [HS256]}}
            """
        )
    )
    checked = assembler.check(str(manifest), assembler.load_plugins(), env={})
    assert [(d.code, d.line, d.col) for d in checked.diagnostics] == [("ASM301", 4, 11)]
    assert not checked.ok and checked.app is None


def test_a_set_variable_still_gets_the_plugins_checks(tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        textwrap.dedent(
            """\
            assemble: 1
            id: app
            config:
              secret: ${env.CASCADE_SHORT_SECRET}
            middleware:
              jwt: {use: auth.jwt, config: {secret: "${config.secret}", algorithms: [HS256]}}
            """
        )
    )
    checked = assembler.check(
        str(manifest), assembler.load_plugins(), env={"CASCADE_SHORT_SECRET": "too-short"}
    )
    assert [(d.code, d.line, d.col) for d in checked.diagnostics] == [("ASM603", 6, 41)]
    assert "shorter than 32 bytes" in checked.diagnostics[0].message
    assert "too-short" not in checked.diagnostics[0].message  # an env value: redacted
