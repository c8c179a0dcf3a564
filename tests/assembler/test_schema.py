"""`assemble schema` (the composed schema) agrees with validate on structural mistakes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

import assembler

from . import demo_plugin

CORPUS = Path(__file__).parent / "corpus"
ROOT = Path(__file__).resolve().parents[2]
STRUCTURAL = {"ASM101", "ASM102", "ASM103", "ASM104", "ASM105", "ASM603"}
_CODE = re.compile(r"^# expect: (ASM\d+)", re.M)


def schema_level_cases() -> list[Path]:
    """Corpus cases whose every expected code is a structural (schema) one."""
    out = []
    for path in sorted(CORPUS.glob("*.yaml")):
        text = path.read_text()
        codes = set(_CODE.findall(text))
        if (
            codes
            and codes <= STRUCTURAL
            and "\ninclude:" not in text  # one file at a time
            and "# env:" not in text  # what an env value fails, no static schema can see
        ):
            out.append(path)
    return out


@pytest.fixture(scope="module")
def validator() -> Any:
    plugins = assembler.load_plugins(only=[], extra=[demo_plugin])
    return jsonschema.Draft202012Validator(assembler.composed_schema(plugins))


def test_there_are_schema_level_cases() -> None:
    assert len(schema_level_cases()) >= 15


@pytest.mark.parametrize("path", schema_level_cases(), ids=lambda p: p.stem)
def test_the_schema_rejects_each_schema_level_case(path: Path, validator: Any) -> None:
    data = YAML(typ="safe", pure=True).load(path)
    assert list(validator.iter_errors(data)), f"{path.name} passes the composed schema"


@pytest.fixture(scope="module")
def installed() -> Any:
    """The schema `assemble schema` prints here: the built-in plugins are installed."""
    return jsonschema.Draft202012Validator(assembler.composed_schema(assembler.load_plugins()))


@pytest.mark.parametrize("path", sorted((ROOT / "manifests").glob("*/app.yaml")), ids=str)
def test_the_schema_accepts_every_example(path: Path, installed: Any) -> None:
    errors = list(installed.iter_errors(YAML(typ="safe", pure=True).load(path)))
    assert not errors, [e.message for e in errors]


def test_a_whole_value_interpolation_is_accepted_where_a_config_value_goes(
    installed: Any,
) -> None:
    def manifest(port: Any, origins: Any) -> Any:
        return {
            "assemble": 1,
            "id": "a",
            "resources": {
                "web": {
                    "use": "http.server",
                    "config": {"port": port, "cors": {"allow_origins": origins}},
                }
            },
        }

    assert not list(installed.iter_errors(manifest("${env.PORT}", ["${config.origin}"])))
    assert not list(installed.iter_errors(manifest("${env.PORT:-8080}", "${config.origins}")))
    assert list(installed.iter_errors(manifest("eighty", ["https://a.example"])))
    assert list(installed.iter_errors(manifest("port ${env.PORT}", ["https://a.example"])))
