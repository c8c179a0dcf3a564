"""The broken-manifest corpus: every file under corpus/ states its exact diagnostics.

Each corpus file starts with comment lines the test reads:

    # expect: CODE LINE:COL ["substring" ...] [plugin=NAME]
    # expect: CODE FILE:LINE:COL ...      (FILE relative to corpus/, for included files)
    # env: NAME=value                     (the environment `check` sees; default empty)
    # absent: "text"                      (must appear in no message or hint)

The set of (code, file, line, col) reported must equal the expected set exactly; each
quoted substring must appear in the message or the hint of the matching diagnostic.
Cases where the assembler is wrong today are strict xfails, with the reason below.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import assembler
from assembler import Diagnostic

from . import demo_plugin

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.yaml"))

_EXPECT = re.compile(
    r"^# expect: (?P<code>[A-Z]+\d+) (?:(?P<file>[^\s:]+):)?(?P<line>\d+):(?P<col>\d+)(?P<rest>.*)$"
)
_QUOTED = re.compile(r'"([^"]*)"')
_PLUGIN = re.compile(r"\bplugin=(\S+)")

# Cases whose expectation is right and the assembler is wrong (see the report).
XFAIL: dict[str, str] = {}

# Diagnostics without a hint where one would help: case -> why the hint test fails.
HINT_XFAIL: dict[str, str] = {}
# Codes for which no hint applies (none so far: every corpus code can say how to fix it).
HINT_NOT_APPLICABLE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Expected:
    code: str
    file: Path
    line: int
    col: int
    substrings: tuple[str, ...] = ()
    plugin: str | None = None

    @property
    def key(self) -> tuple[str, Path, int, int]:
        return (self.code, self.file, self.line, self.col)


@dataclass
class Case:
    path: Path
    expected: list[Expected] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)


def parse_case(path: Path) -> Case:
    case = Case(path)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if m := _EXPECT.match(line):
            plugin = _PLUGIN.search(m["rest"])
            case.expected.append(
                Expected(
                    m["code"],
                    (CORPUS / m["file"]).resolve() if m["file"] else path.resolve(),
                    int(m["line"]),
                    int(m["col"]),
                    tuple(_QUOTED.findall(m["rest"])),
                    plugin[1] if plugin else None,
                )
            )
        elif line.startswith("# env: "):
            name, _, value = line.removeprefix("# env: ").partition("=")
            case.env[name.strip()] = value.strip()
        elif line.startswith("# absent: "):
            case.absent.extend(_QUOTED.findall(line))
    return case


def key_of(d: Diagnostic) -> tuple[str, Path, int, int]:
    return (d.code, Path(d.file).resolve(), d.line, d.col)


def show(diags: list[Diagnostic]) -> str:
    return "\n".join(f"  {d.code} {d.place} {d.message} | hint: {d.hint}" for d in diags)


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """`check` puts each manifest's python_path on sys.path; undo that after each test."""
    monkeypatch.setattr(sys, "path", [*sys.path])


@pytest.fixture(scope="module")
def plugins() -> assembler.Plugins:
    loaded = assembler.load_plugins(only=[], extra=[demo_plugin])
    assert loaded.problems == []
    return loaded


def run_case(case: Case, plugins: assembler.Plugins) -> list[Diagnostic]:
    return assembler.check(str(case.path), plugins, env=case.env).diagnostics


def _params(xfails: dict[str, str]) -> list[Any]:
    return [
        pytest.param(
            p,
            id=p.stem,
            marks=[pytest.mark.xfail(strict=True, reason=xfails[p.stem])]
            if p.stem in xfails
            else [],
        )
        for p in CASES
    ]


def test_corpus_is_big_and_every_case_states_its_expectation() -> None:
    assert len(CASES) >= 45
    for path in CASES:
        case = parse_case(path)
        assert case.expected, f"{path.name} has no `# expect:` line"
    assert set(XFAIL) <= {p.stem for p in CASES}
    assert set(HINT_XFAIL) <= {p.stem for p in CASES}


@pytest.mark.parametrize("path", _params(XFAIL))
def test_corpus_case(path: Path, plugins: assembler.Plugins) -> None:
    case = parse_case(path)
    diags = run_case(case, plugins)
    got = Counter(key_of(d) for d in diags)
    want = Counter(e.key for e in case.expected)
    assert got == want, f"{path.name}: expected {sorted(want.elements())}, got:\n{show(diags)}"
    for e in case.expected:
        matching = [d for d in diags if key_of(d) == e.key]
        assert any(all(s in f"{d.message}\n{d.hint}" for s in e.substrings) for d in matching), (
            f"{path.name}: no {e.code} at {e.line}:{e.col} mentions {e.substrings}:\n"
            f"{show(matching)}"
        )
        if e.plugin is not None:
            assert any(d.plugin == e.plugin for d in matching), show(matching)
    for text in case.absent:
        for d in diags:
            assert text not in d.message and text not in d.hint, show([d])


@pytest.mark.parametrize("path", _params(HINT_XFAIL))
def test_no_traceback_and_a_hint_for_every_diagnostic(
    path: Path, plugins: assembler.Plugins
) -> None:
    diags = run_case(parse_case(path), plugins)
    for d in diags:
        assert "Traceback" not in d.message and "Traceback" not in d.hint, show([d])
    lacking = [d for d in diags if not d.hint.strip() and d.code not in HINT_NOT_APPLICABLE]
    assert lacking == [], f"{path.name}: diagnostics without a hint:\n{show(lacking)}"


def test_the_plugin_config_diagnostic_names_the_plugin(plugins: assembler.Plugins) -> None:
    diags = run_case(parse_case(CORPUS / "plugin_config_bad.yaml"), plugins)
    assert {d.code for d in diags} == {"ASM603"}
    for d in diags:
        assert d.plugin == "demo"
        assert "'demo.cache'" in d.message and "plugin demo" in d.message


def test_an_alias_bomb_is_rejected_in_milliseconds(plugins: assembler.Plugins) -> None:
    path = CORPUS / "alias_bomb.yaml"
    assert path.stat().st_size < 1024
    assembler.check(str(path), plugins, env={})  # warm up (first-use imports, caches)
    start = time.perf_counter()
    diags = assembler.check(str(path), plugins, env={}).diagnostics
    elapsed = time.perf_counter() - start
    assert [d.code for d in diags] == ["ASM008"]
    # ~25 ms here (bench/README.md), 100-150 ms under coverage; expanding it would take
    # minutes and gigabytes. The margin is wide so a loaded CI machine (coverage, a full
    # GC, the other core busy) cannot fail it; the guard is the mechanism.
    assert elapsed < 2.0, f"check took {elapsed * 1000:.1f} ms"


def test_an_oversize_file_is_rejected_before_parsing(
    tmp_path: Path, plugins: assembler.Plugins
) -> None:
    path = tmp_path / "big.yaml"
    filler = "".join(f"  key_{i:06d}: {'x' * 40}\n" for i in range(20_000))
    path.write_text(f"assemble: 1\nid: app\nconfig:\n{filler}", encoding="utf-8")
    assert path.stat().st_size > 1024 * 1024
    diags = assembler.check(str(path), plugins, env={}).diagnostics
    assert [(d.code, d.line, d.col) for d in diags] == [("ASM002", 1, 1)]
    assert "1,048,576" in diags[0].message
    assert diags[0].hint


def _sentinel(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A module outside any python_path whose import writes ``flag``."""
    outside = tmp_path / "outside"
    outside.mkdir()
    flag = tmp_path / f"{name}.imported"
    (outside / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(flag)!r}).write_text('imported')\n"
        "def boom(input):\n    return 'boom'\n",
        encoding="utf-8",
    )
    return outside, flag


def _app(tmp_path: Path, body: str) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.yaml").write_text(f"assemble: 1\nid: app\n{body}", encoding="utf-8")
    return app / "app.yaml"


def test_a_disallowed_module_is_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugins: assembler.Plugins
) -> None:
    name = "corpus_sentinel_disallowed"
    outside, flag = _sentinel(tmp_path, name)
    monkeypatch.syspath_prepend(str(outside))  # importing it would succeed
    monkeypatch.delitem(sys.modules, name, raising=False)
    manifest = _app(tmp_path, f"tasks:\n  boom:\n    run: {name}:boom\n")
    diags = assembler.check(str(manifest), plugins, env={}).diagnostics
    assert [(d.code, d.line, d.col) for d in diags] == [("ASM402", 5, 10)], show(diags)
    assert name not in sys.modules
    assert not flag.exists()


def test_the_sentinel_is_imported_once_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugins: assembler.Plugins
) -> None:
    """The control for the test above: the sentinel does reveal an import."""
    name = "corpus_sentinel_allowed"
    outside, flag = _sentinel(tmp_path, name)
    monkeypatch.syspath_prepend(str(outside))
    monkeypatch.delitem(sys.modules, name, raising=False)
    manifest = _app(tmp_path, f"allow_imports: [{name}]\ntasks:\n  boom:\n    run: {name}:boom\n")
    try:
        diags = assembler.check(str(manifest), plugins, env={}).diagnostics
        assert diags == [], show(diags)
        assert name in sys.modules
        assert flag.exists()
    finally:
        sys.modules.pop(name, None)


def test_a_file_that_is_not_utf8(tmp_path: Path, plugins: assembler.Plugins) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("assemble: 1\nid: app\ndescription: café\n".encode("latin-1"))
    diags = assembler.check(str(path), plugins, env={}).diagnostics
    assert [d.code for d in diags] == ["ASM001"]
    assert "UTF-8" in diags[0].hint


def test_not_callable_message_reads_well(plugins: assembler.Plugins) -> None:
    diags = run_case(parse_case(CORPUS / "import_not_callable.yaml"), plugins)
    assert "is an int, not a callable" in diags[0].message
