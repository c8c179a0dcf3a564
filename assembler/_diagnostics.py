from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Mark:
    """A place in a source file (1-based line and column)."""

    file: str
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: where (file, line, col, JSON pointer), what (code, message), how to fix."""

    code: str
    message: str
    file: str = ""
    line: int = 0
    col: int = 0
    pointer: str = ""
    hint: str = ""
    severity: Severity = "error"
    plugin: str = "core"
    end_col: int = field(default=0, compare=False)

    @property
    def place(self) -> str:
        if not self.file:
            return "<assemble>"
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file, d.line, d.col, d.code)


def render_text(diags: Sequence[Diagnostic], sources: dict[str, list[str]]) -> str:
    """Compiler-style: place, code and message, the source line with a caret, the hint."""
    out: list[str] = []
    for d in diags:
        out.append(f"{d.place}: {d.severity}[{d.code}] {d.message}")
        lines = sources.get(d.file)
        if lines and 0 < d.line <= len(lines):
            src = lines[d.line - 1].rstrip("\n")
            gutter = str(d.line)
            pad = " " * len(gutter)
            width = max(1, (d.end_col - d.col) if d.end_col > d.col else _token_width(src, d.col))
            out.append(f"{pad} |")
            out.append(f"{gutter} | {src}")
            out.append(f"{pad} | {' ' * (d.col - 1)}{'^' * width}")
        if d.pointer:
            out.append(f"  = at: {d.pointer}")
        if d.hint:
            out.append(f"  = hint: {d.hint}")
        if d.plugin != "core":
            out.append(f"  = rule of plugin: {d.plugin}")
    errors = sum(d.severity == "error" for d in diags)
    warnings = len(diags) - errors
    if diags:
        out.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(out)


def _token_width(line: str, col: int) -> int:
    rest = line[col - 1 :]
    for i, ch in enumerate(rest):
        if ch in " ,]}#" or (ch == ":" and (i + 1 == len(rest) or rest[i + 1] == " ")):
            return max(i, 1)
    return max(len(rest), 1)


def render_json(diags: Iterable[Diagnostic]) -> str:
    """A JSON list; each item has every field of :class:`Diagnostic` (documented in docs/cli.md)."""
    items = []
    for d in diags:
        item = asdict(d)
        item.pop("end_col")
        items.append(item)
    return json.dumps(items, indent=2)


def render_github(diags: Iterable[Diagnostic]) -> str:
    """GitHub Actions workflow commands: ``::error file=F,line=L,col=C,title=T::message``."""
    out = []
    for d in diags:
        props = [f"file={_prop(d.file)}"] if d.file else []
        if d.line:
            props += [f"line={d.line}", f"col={d.col}"]
        props.append(f"title={_prop(d.code)}")
        message = d.message + (f"\n\nhint: {d.hint}" if d.hint else "")
        out.append(f"::{d.severity} {','.join(props)}::{_data(message)}")
    return "\n".join(out)


def _data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(s: str) -> str:
    return _data(s).replace(":", "%3A").replace(",", "%2C")
