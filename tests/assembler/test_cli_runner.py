"""The CLI in process (click's CliRunner): formats, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import assembler
from assembler import _cli

ROOT = Path(__file__).resolve().parents[2]
HELLO = str(ROOT / "manifests" / "hello" / "app.yaml")


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def bad(tmp_path: Path) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text("assemble: 1\nid: x\ntasks:\n  t: {run: 'nope:f', dependecies: {}}\n")
    return str(path)


def test_validate_formats(cli: CliRunner, tmp_path: Path) -> None:
    broken = bad(tmp_path)
    text = cli.invoke(_cli.cli, ["validate", broken])
    assert text.exit_code == 1
    assert "bad.yaml:4:22: error[ASM101] unknown key 'dependecies' in task 't'" in text.output
    assert "^^^^^^^^^^^" in text.output and "= hint: did you mean 'dependencies'?" in text.output
    as_json = cli.invoke(_cli.cli, ["validate", "--format", "json", broken])
    assert [d["code"] for d in json.loads(as_json.stdout)] == ["ASM101"]
    github = cli.invoke(_cli.cli, ["validate", "--format", "github", broken])
    assert github.stdout.startswith("::error file=")
    ok = cli.invoke(_cli.cli, ["validate", HELLO])
    assert ok.exit_code == 0 and "1 manifest(s) valid" in ok.output
    empty_github = cli.invoke(_cli.cli, ["validate", "--format", "github", HELLO])
    assert empty_github.exit_code == 0 and empty_github.stdout == ""


def test_call_graph_schema_plugins(cli: CliRunner) -> None:
    call = cli.invoke(_cli.cli, ["call", HELLO, "greet", "--input", '{"name": "Bo"}'])
    assert call.exit_code == 0, call.output
    assert json.loads(call.stdout) == {"message": "Hello, Bo!"}
    assert cli.invoke(_cli.cli, ["graph", HELLO]).stdout.startswith("graph LR")
    assert "digraph" in cli.invoke(_cli.cli, ["graph", "--format", "dot", HELLO]).stdout
    assert json.loads(cli.invoke(_cli.cli, ["schema"]).stdout)["$defs"]
    listing = cli.invoke(_cli.cli, ["--plugins", "", "plugins"])
    assert listing.exit_code == 0 and "no plugins loaded" in listing.stdout


def test_call_failures_are_reported_without_a_traceback(cli: CliRunner) -> None:
    failed = cli.invoke(_cli.cli, ["call", HELLO, "greet", "--input", "{}"])
    assert failed.exit_code == 1
    assert "error[runner.validation]: invalid input for 'greet': name: is required" in failed.output
    assert "Traceback" not in failed.output
    unknown = cli.invoke(_cli.cli, ["call", HELLO, "grete"])
    assert unknown.exit_code == 2 and "did you mean 'greet'?" in unknown.output


def test_main_turns_an_internal_error_into_a_coded_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something broke")

    monkeypatch.setattr(_cli, "check", boom)
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["validate", HELLO])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "error[ASM900]: internal error: RuntimeError: something broke" in err
    assert "--debug" in err and "Traceback" not in err


def test_main_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ok:
        _cli.main(["validate", HELLO])
    assert ok.value.code == 0
    with pytest.raises(SystemExit) as usage:
        _cli.main(["call", HELLO, "greet", "--input", "{bad"])
    assert usage.value.code == 2
    assert "error[ASM801]" in capsys.readouterr().err


def test_render_text_for_a_diagnostic_without_a_place() -> None:
    d = assembler.Diagnostic("ASM601", "plugin 'x' failed", hint="fix it", plugin="x")
    text = assembler._diagnostics.render_text([d], {})
    assert text.startswith("<assemble>: error[ASM601] plugin 'x' failed")
    assert "rule of plugin: x" in text and "1 error(s), 0 warning(s)" in text


def test_call_reports_a_result_without_a_json_form(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "loop_mod.py").write_text(
        "def loop(input):\n    x = []\n    x.append(x)\n    return x\n\n"
        "def nan(input):\n    return float('nan')\n"
    )
    (tmp_path / "app.yaml").write_text(
        "assemble: 1\nid: j\ntasks:\n  loop: {run: loop_mod:loop}\n  nan: {run: loop_mod:nan}\n"
    )
    for task in ("loop", "nan"):
        out = cli.invoke(_cli.cli, ["call", str(tmp_path / "app.yaml"), task])
        assert out.exit_code == 1 and out.stdout == ""
        assert f"error[ASM803]: the result of {task!r} cannot be printed as JSON" in out.output
        assert "hint: return JSON-ready values" in out.output
