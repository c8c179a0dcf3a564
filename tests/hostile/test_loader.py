"""The manifest loader as an attacker would use it: an ``include:`` that points out of
the tree, at a device, a FIFO, a folder, a socket, a ``.env`` file or a huge file.

Each refusal is a diagnostic with its code, at the include entry, in well under a
second, and nothing of the target is printed: every target holds :data:`MARKER` on a
line that a parser error would show. ``check`` runs in a thread, so a loader that
blocks (opening a FIFO waits for a writer) fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import assembler
from assembler import Diagnostic, _manifest
from assembler._diagnostics import render_github, render_json, render_text
from assembler._yaml import MAX_BYTES, load

MARKER = "HOSTILE-MARKER-7f3a"
#: What a target holds: if it were ever parsed, the YAML error shows this line.
CONTENT = f"{MARKER}: [unclosed\nPASSWORD={MARKER}\n"
BOUND = 1.0  # seconds; a refusal takes a few milliseconds


@pytest.fixture(scope="module")
def plugins() -> assembler.Plugins:
    loaded = assembler.load_plugins(only=[])
    tree = Path(__file__).parent  # warm up: first-use imports and schema caches
    assembler.check(str(tree / "nothing.yaml"), loaded, env={})
    return loaded


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The manifest's folder; ``tmp_path`` (its parent) is outside the tree."""
    folder = tmp_path / "app"
    folder.mkdir()
    return folder


def manifest(folder: Path, *includes: str) -> Path:
    path = folder / "app.yaml"
    entries = "".join(f"  - {json.dumps(i)}\n" for i in includes)
    path.write_text(f"assemble: 1\nid: app\ninclude:\n{entries}", encoding="utf-8")
    return path


def outside(tmp_path: Path, name: str = "outside.yaml") -> Path:
    target = tmp_path / name
    target.write_text(CONTENT, encoding="utf-8")
    return target


def timed_check(
    path: Path,
    plugins: assembler.Plugins,
    *,
    overlays: Sequence[str] = (),
    roots: Sequence[str] = (),
    env: dict[str, str] | None = None,
    bound: float = BOUND,
) -> list[Diagnostic]:
    """``check``'s diagnostics, asserting it finished within :data:`BOUND` and printed
    nothing of a target in any output format."""
    box: list[assembler.Checked] = []

    def work() -> None:
        found = assembler.check(str(path), plugins, env or {}, overlays=overlays, roots=roots)
        box.append(found)

    start = time.perf_counter()
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(max(10, 3 * bound))
    elapsed = time.perf_counter() - start
    assert box, "check blocked (it opened a FIFO or a device and waited)"
    assert elapsed < bound, f"check took {elapsed:.2f} s"
    checked = box[0]
    sources = checked.manifest.sources if checked.manifest else {}
    diags = checked.diagnostics
    for printed in (render_text(diags, sources), render_json(diags), render_github(diags)):
        assert MARKER not in printed
    assert not any(MARKER in "\n".join(lines) for lines in sources.values())
    return diags


def only(diags: list[Diagnostic], code: str, line: int = 4, col: int = 5) -> Diagnostic:
    assert [(d.code, d.line, d.col) for d in diags] == [(code, line, col)], diags
    assert diags[0].hint and diags[0].file.endswith("app.yaml")
    return diags[0]


def test_a_parent_path_is_refused(tmp_path: Path, app: Path, plugins: assembler.Plugins) -> None:
    outside(tmp_path)
    d = only(timed_check(manifest(app, "../outside.yaml"), plugins), "ASM703")
    assert "'../outside.yaml' is outside the folders" in d.message and "--root" in d.hint


def test_a_deep_parent_path_to_a_system_file_is_refused(
    app: Path, plugins: assembler.Plugins
) -> None:
    escape = "../" * 30 + "etc/passwd"
    only(timed_check(manifest(app, escape), plugins), "ASM703")


def test_an_absolute_path_is_refused(tmp_path: Path, app: Path, plugins: assembler.Plugins) -> None:
    target = outside(tmp_path)
    only(timed_check(manifest(app, str(target)), plugins), "ASM703")


def test_an_absolute_path_inside_the_tree_is_read(app: Path, plugins: assembler.Plugins) -> None:
    """The control: the rule is where a path resolves, not how it is written."""
    (app / "part.yaml").write_text("tasks: {}\n", encoding="utf-8")
    assert timed_check(manifest(app, str(app / "part.yaml")), plugins) == []


def test_a_symlink_out_of_the_tree_is_refused(
    tmp_path: Path, app: Path, plugins: assembler.Plugins
) -> None:
    (app / "link.yaml").symlink_to(outside(tmp_path))
    only(timed_check(manifest(app, "link.yaml"), plugins), "ASM703")


def test_a_symlinked_folder_out_of_the_tree_is_refused(
    tmp_path: Path, app: Path, plugins: assembler.Plugins
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    outside(shared, "part.yaml")
    (app / "parts").symlink_to(shared, target_is_directory=True)
    only(timed_check(manifest(app, "parts/part.yaml"), plugins), "ASM703")


def test_dev_zero_is_refused(app: Path, plugins: assembler.Plugins) -> None:
    only(timed_check(manifest(app, "/dev/zero"), plugins), "ASM703")


def test_dev_zero_under_a_root_is_still_refused_by_its_name(
    app: Path, plugins: assembler.Plugins
) -> None:
    only(timed_check(manifest(app, "/dev/zero"), plugins, roots=["/dev"]), "ASM705")


def test_a_device_behind_a_yaml_name_is_refused_without_reading(
    app: Path, plugins: assembler.Plugins
) -> None:
    (app / "zero.yaml").symlink_to("/dev/zero")
    diags = timed_check(manifest(app, "zero.yaml"), plugins, roots=["/dev"])
    assert only(diags, "ASM705")  # its own name, zero, is what is read


def test_dev_zero_as_an_overlay_or_the_manifest_is_refused(
    app: Path, plugins: assembler.Plugins
) -> None:
    (app / "part.yaml").write_text("tasks: {}\n", encoding="utf-8")
    diags = timed_check(manifest(app, "part.yaml"), plugins, overlays=["/dev/zero"])
    assert [(d.code, d.file, d.line) for d in diags] == [("ASM704", "/dev/zero", 0)]
    assert "is a device, not a regular file" in diags[0].message
    assert [d.code for d in timed_check(Path("/dev/zero"), plugins)] == ["ASM704"]


def test_a_fifo_is_refused_without_blocking(app: Path, plugins: assembler.Plugins) -> None:
    os.mkfifo(app / "pipe.yaml")
    d = only(timed_check(manifest(app, "pipe.yaml"), plugins), "ASM704")
    assert "named pipe (FIFO), not a regular file" in d.message


def test_a_fifo_as_the_manifest_or_an_overlay_is_refused(
    app: Path, plugins: assembler.Plugins
) -> None:
    os.mkfifo(app / "pipe.yaml")
    (app / "part.yaml").write_text("tasks: {}\n", encoding="utf-8")
    assert [d.code for d in timed_check(app / "pipe.yaml", plugins)] == ["ASM704"]
    diags = timed_check(manifest(app, "part.yaml"), plugins, overlays=[str(app / "pipe.yaml")])
    assert [d.code for d in diags] == ["ASM704"]


def test_a_directory_is_refused(app: Path, plugins: assembler.Plugins) -> None:
    (app / "dir.yaml").mkdir()
    d = only(timed_check(manifest(app, "dir.yaml"), plugins), "ASM704")
    assert "is a directory" in d.message


def test_a_socket_is_refused(
    app: Path, plugins: assembler.Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(app)  # a short name: socket paths are limited to ~100 bytes
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sock.yaml")
        d = only(timed_check(manifest(app, "sock.yaml"), plugins), "ASM704")
    assert "is a socket" in d.message


def test_a_dotenv_file_is_refused(app: Path, plugins: assembler.Plugins) -> None:
    (app / ".env").write_text(CONTENT, encoding="utf-8")
    d = only(timed_check(manifest(app, ".env"), plugins), "ASM705")
    assert "is not a .yaml or .yml file" in d.message


def test_a_yaml_name_that_links_to_a_dotenv_file_is_refused(
    app: Path, plugins: assembler.Plugins
) -> None:
    (app / ".env").write_text(CONTENT, encoding="utf-8")
    (app / "settings.yaml").symlink_to(app / ".env")
    only(timed_check(manifest(app, "settings.yaml"), plugins), "ASM705")


def test_a_file_over_the_cap_is_refused_at_the_include(
    app: Path, plugins: assembler.Plugins
) -> None:
    big = app / "big.yaml"
    big.write_text(CONTENT + "# " + "x" * MAX_BYTES + "\n", encoding="utf-8")
    d = only(timed_check(manifest(app, "big.yaml"), plugins), "ASM002")
    assert f"{big.stat().st_size:,} bytes" in d.message and "1,048,576" in d.message


def test_the_total_cap_counts_the_manifest_its_includes_and_overlays(
    app: Path, plugins: assembler.Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_manifest, "MAX_TOTAL_BYTES", 4096)  # the same rule, smaller
    for name in ("a", "b"):
        (app / f"{name}.yaml").write_text(f"config:\n  {name}: '{'x' * 1500}'\n")
    (app / "c.yaml").write_text(CONTENT + "#" * 1500 + "\n")
    diags = timed_check(manifest(app, "a.yaml", "b.yaml", "c.yaml"), plugins)
    d = only(diags, "ASM706", line=6)
    assert "more than the" in d.message and "of the 4,096" in d.message


def test_the_number_of_files_is_capped_and_reported_once(
    app: Path, plugins: assembler.Plugins
) -> None:
    (app / "part.yaml").write_text("config: {}\n", encoding="utf-8")
    count = _manifest.MAX_FILES + 50
    diags = timed_check(manifest(app, *["part.yaml"] * count), plugins)
    # the manifest is file 1, so include number MAX_FILES (on line 3 + MAX_FILES) is one too many
    only(diags, "ASM706", line=3 + _manifest.MAX_FILES)


def test_a_symlink_loop_is_a_diagnostic(app: Path, plugins: assembler.Plugins) -> None:
    (app / "loop.yaml").symlink_to(app / "loop.yaml")
    only(timed_check(manifest(app, "loop.yaml"), plugins), "ASM701")


def test_a_nul_in_the_path_is_a_diagnostic(app: Path, plugins: assembler.Plugins) -> None:
    d = only(timed_check(manifest(app, "a\x00b.yaml"), plugins), "ASM701")
    assert "NUL" in d.message


def test_a_nested_include_is_confined_to_the_top_manifests_tree(
    tmp_path: Path, app: Path, plugins: assembler.Plugins
) -> None:
    outside(tmp_path)
    parts = app / "parts"
    parts.mkdir()
    (app / "shared.yaml").write_text("tasks: {}\n", encoding="utf-8")
    (parts / "a.yaml").write_text(
        "include: [../shared.yaml, ../../outside.yaml]\n", encoding="utf-8"
    )
    diags = timed_check(manifest(app, "parts/a.yaml"), plugins)
    assert [(d.code, Path(d.file).name, d.line, d.col) for d in diags] == [
        ("ASM703", "a.yaml", 1, 27)
    ]


def test_a_root_on_the_command_line_widens_and_a_fragment_cannot(
    tmp_path: Path, app: Path, plugins: assembler.Plugins
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "events.yaml").write_text(
        "events: {saved: {}}\ninclude: [../outside.yaml]\n", encoding="utf-8"
    )
    outside(tmp_path)
    path = manifest(app, "../shared/events.yaml")
    assert [d.code for d in timed_check(path, plugins)] == ["ASM703"]
    diags = timed_check(path, plugins, roots=[str(shared)])
    assert [(d.code, Path(d.file).name, d.line) for d in diags] == [("ASM703", "events.yaml", 2)]


@pytest.mark.parametrize(
    ("value", "use"),
    [
        ("${env.UNSET_#}", "${config.c#}"),  # each one fails: one diagnostic each
        ("x", '"${config.c#}-${env.HOME}"'),  # each one from the environment
    ],
)
def test_many_references_cost_linear_time(
    app: Path, plugins: assembler.Plugins, value: str, use: str
) -> None:
    """6 000 config values each used once: checking costs about 1.5 times parsing the
    file here; a scan of every earlier failure or secret per reference cost 5 to 7
    times. The bound is relative to parsing, so a slow machine is slow at both."""
    n = 6000
    config = "".join(f"  c{i}: {value.replace('#', str(i))}\n" for i in range(n))
    uses = "".join(f"      k{i}: {use.replace('#', str(i))}\n" for i in range(n))
    text = (
        f"assemble: 1\nid: app\nconfig:\n{config}resources:\n  r:\n"
        f"    init: nowhere:f\n    config:\n{uses}"
    )
    path = app / "app.yaml"
    path.write_text(text, encoding="utf-8")
    start = time.perf_counter()
    load(text, "app.yaml")
    parsing = time.perf_counter() - start
    diags = timed_check(path, plugins, env={"HOME": "/home/ci"}, bound=max(1.0, 3.5 * parsing))
    assert {d.code for d in diags} <= {"ASM301", "ASM402"}
