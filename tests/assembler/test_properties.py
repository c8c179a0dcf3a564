"""Random mutations of valid manifests end in diagnostics, never in an exception."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import assembler

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "manifests").glob("*/app.yaml"))
PLUGINS = assembler.load_plugins(only=[])
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["${env.NOPE}", "${config.x}", "$${", "a:b", "os:system", "*", "", "-1"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.none(), max_size=2),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


def mutate(data: Any, path: tuple[Any, ...], how: str, junk: Any, name: str) -> Any:
    data = copy.deepcopy(data)
    if not path:
        return junk if how == "retype" else data
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "retype" or how == "junk":
        parent[last] = junk
    elif how == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    elif how == "duplicate" and isinstance(parent, dict):
        parent[f"{last}_copy"] = copy.deepcopy(parent[last])
    elif how == "rename" and isinstance(parent, dict):
        parent[name or "x"] = parent.pop(last)
    return data


MUTATIONS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def check_text(tmp: Path, manifest: Path, text: str) -> None:
    """Check ``text`` as a manifest that imports from ``manifest``'s folder."""
    path = tmp / "app.yaml"
    path.write_text(f"python_path: [{json.dumps(str(manifest.parent))}]\n{text}")
    result = assembler.check(str(path), PLUGINS, env={})
    for d in result.diagnostics:
        assert d.code and d.message and "Traceback" not in d.message
        assert d.severity in ("error", "warning")


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.parent.name)
@given(data=st.data())
@MUTATIONS
def test_structural_mutations_only_give_diagnostics(
    manifest: Path, tmp_path: Path, data: st.DataObject
) -> None:
    original = YAML(typ="safe", pure=True).load(manifest)
    path = data.draw(st.sampled_from(paths(original)))
    how = data.draw(st.sampled_from(["delete", "retype", "junk", "duplicate", "rename"]))
    junk = data.draw(JUNK)
    name = data.draw(st.sampled_from(["dependecies", "use", "run", "init", "on", "tasks", "zzz"]))
    mutated = mutate(original, path, how, junk, name)
    if isinstance(mutated, dict):
        mutated.pop("python_path", None)
        text = "\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in mutated.items())
    else:
        text = json.dumps(mutated)
    check_text(tmp_path, manifest, text)


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.parent.name)
@given(data=st.data())
@MUTATIONS
def test_text_mutations_only_give_diagnostics(
    manifest: Path, tmp_path: Path, data: st.DataObject
) -> None:
    lines = manifest.read_text().splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    how = data.draw(st.sampled_from(["drop", "dup", "indent", "junk", "cut"]))
    if how == "drop":
        del lines[i]
    elif how == "dup":
        lines.insert(i, lines[i])
    elif how == "indent":
        lines[i] = "   " + lines[i]
    elif how == "junk":
        lines[i] = data.draw(st.text(max_size=20))
    else:
        lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
    check_text(tmp_path, manifest, "\n".join(lines) + "\n")
