"""The CLI end to end, in real subprocesses: what users and CI see."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "manifests" / "hello" / "app.yaml"
BROKEN = """\
assemble: 1
id: hello
python_path: [{hello}]
tasks:
  greet:
    run: hello_app.tasks:greet
    dependecies: {{greeter: greeter}}
  count:
    run: hello_app.tasks:count
    dependencies: {{greeter: greter}}
"""


def assemble(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "assembler", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN.format(hello=HELLO.parent))
    return path


def test_validate_a_valid_manifest() -> None:
    r = assemble("validate", str(HELLO))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "valid" in r.stderr


def test_validate_reports_every_problem_like_a_compiler(broken: Path) -> None:
    r = assemble("validate", str(broken))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert re.search(r"broken\.yaml:7:5: error\[ASM101\] unknown key 'dependecies'", r.stderr)
    assert re.search(r"broken\.yaml:10:29: error\[ASM203\] unknown id 'greter'", r.stderr)
    assert "did you mean 'dependencies'?" in r.stderr
    assert "    dependecies: {greeter: greeter}\n  |     ^^^^^^^^^^^" in r.stderr
    assert "2 error(s)" in r.stderr


def test_validate_json_is_a_documented_list(broken: Path) -> None:
    r = assemble("validate", "--format", "json", str(broken))
    assert r.returncode == 1
    items = json.loads(r.stdout)
    assert [(d["code"], d["line"], d["col"]) for d in items] == [
        ("ASM101", 7, 5),
        ("ASM203", 10, 29),
    ]
    assert set(items[0]) == {
        "code",
        "message",
        "file",
        "line",
        "col",
        "pointer",
        "hint",
        "severity",
        "plugin",
    }
    assert items[0]["pointer"] == "/tasks/greet/dependecies"
    assert items[0]["severity"] == "error" and items[0]["plugin"] == "core"


def test_validate_github_annotations(broken: Path) -> None:
    r = assemble("validate", "--format", "github", str(broken))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    pattern = r"^::error file=[^,:]+broken\.yaml,line=\d+,col=\d+,title=ASM\d{3}::[^\n]+$"
    for line in lines:
        assert re.match(pattern, line), line
    assert "%0A%0Ahint: did you mean" in lines[0]


def test_validate_several_files(broken: Path) -> None:
    r = assemble("validate", "--format", "json", str(HELLO), str(broken))
    assert r.returncode == 1
    assert {Path(d["file"]).name for d in json.loads(r.stdout)} == {"broken.yaml"}


def test_validate_a_missing_file_is_a_diagnostic(tmp_path: Path) -> None:
    r = assemble("validate", str(tmp_path / "nope.yaml"))
    assert r.returncode == 1
    assert "error[ASM001] cannot read" in r.stderr and "Traceback" not in r.stderr


def test_call_prints_only_json_on_stdout() -> None:
    r = assemble("call", str(HELLO), "greet", "--input", '{"name": "Ada"}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"message": "Hello, Ada!"}
    assert "greeted Ada" in r.stderr


def test_call_takes_env_interpolation() -> None:
    r = assemble("call", str(HELLO), "greet", "--input", '{"name": "Ada"}', env={"GREETING": "Hi"})
    assert json.loads(r.stdout) == {"message": "Hi, Ada!"}


def test_call_on_trio() -> None:
    r = assemble("call", str(HELLO), "count", "--backend", "trio")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == 0


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["greet", "--input", "{oops"], 2, "error[ASM801]: --input is not JSON"),
        (["gret"], 2, "did you mean 'greet'?"),
        (["greet", "--input", '{"nom": "Ada"}'], 1, "error[runner.validation]"),
    ],
)
def test_call_failures(args: list[str], code: int, needle: str) -> None:
    r = assemble("call", str(HELLO), *args)
    assert r.returncode == code, r.stderr
    assert needle in r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr


def test_run_until_sigterm_then_dispose_gracefully() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "assembler", "run", str(HELLO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    line = ""
    while "is running" not in line:
        assert time.monotonic() < deadline and proc.poll() is None
        line = proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "greeted 0 people" in err and out == ""


def test_run_a_broken_manifest_starts_nothing(broken: Path) -> None:
    r = assemble("run", str(broken))
    assert r.returncode == 1 and "ASM101" in r.stderr and "is running" not in r.stderr


def test_schema_validates_the_examples_and_rejects_schema_level_mistakes(broken: Path) -> None:
    r = assemble("schema")
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    yaml = YAML(typ="safe", pure=True)
    for manifest in sorted((ROOT / "manifests").glob("*/app.yaml")):
        errors = list(validator.iter_errors(yaml.load(manifest)))
        assert errors == [], (manifest, errors[:1])
    assert list(validator.iter_errors(yaml.load(broken)))


def test_schema_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert assemble("schema", "-o", str(out)).returncode == 0
    assert json.loads(out.read_text())["title"].startswith("assemble manifest")


def test_graph_mermaid_and_dot() -> None:
    mermaid = assemble("graph", str(HELLO))
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.startswith("graph LR")
    for id in ("greeter", "greet", "count", "greeted", "log_greeting", "remember"):
        assert f'"{id}"' in mermaid.stdout
    assert "-.->|on|" in mermaid.stdout
    dot = assemble("graph", "--format", "dot", str(HELLO))
    assert dot.stdout.startswith('digraph "hello"') and "cylinder" in dot.stdout


def test_plugins_lists_what_is_installed() -> None:
    r = assemble("plugins", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), list)


def test_help_and_usage_errors() -> None:
    assert assemble("--help").returncode == 0
    r = assemble("frobnicate")
    assert r.returncode == 2 and "No such command" in r.stderr and "Traceback" not in r.stderr
    assert assemble("validate").returncode == 2
