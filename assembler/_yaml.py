"""Loading one YAML file safely: a guard over the event stream, then positions for every node.

The guard runs before anything is built, so a bomb is rejected after reading its
events once: no alias is ever expanded beyond the caps (DESIGN §8).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml import events as ev
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ._diagnostics import Diagnostic, Mark

MAX_BYTES = 1024 * 1024
MAX_ALIASES = 100
MAX_NODES = 100_000
MAX_DEPTH = 64

Path = tuple[str | int, ...]
_TAG = "tag:yaml.org,2002:"


@dataclass
class Document:
    """A parsed file: plain data, and the place of every value and key in it."""

    file: str
    data: Any
    lines: list[str]
    marks: dict[Path, Mark] = field(default_factory=dict)
    key_marks: dict[Path, Mark] = field(default_factory=dict)


class LoadError(Exception):
    """The file cannot be loaded; ``diagnostic`` says where and why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def load(text: str, file: str) -> Document:
    """Parse ``text`` (named ``file`` in diagnostics); raise :class:`LoadError`."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        _fail(
            "ASM002",
            f"the file is {size:,} bytes; manifests are capped at {MAX_BYTES:,}",
            file,
            1,
            1,
            "split it with `include:` into smaller files",
        )
    yaml = YAML(typ="safe", pure=True)
    try:
        directive = next((i for i, t in enumerate(text.splitlines(), 1) if t.startswith("%")), 1)
        _guard(yaml.parse(io.StringIO(text)), file, directive)
        root = yaml.compose(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        _fail("ASM003", f"YAML syntax error: {problem}", file, line, col, _syntax_hint(problem))
    except YAMLError as exc:  # pragma: no cover  # ruamel marks every syntax error
        _fail("ASM003", f"YAML syntax error: {exc}", file, 1, 1, "")
    doc = Document(file, None, text.splitlines())
    if root is None:
        _fail(
            "ASM012",
            "the file is empty",
            file,
            1,
            1,
            "a manifest is a mapping that starts with `assemble: 1`",
        )
    doc.data = _build(root, (), doc)
    return doc


def _fail(code: str, message: str, file: str, line: int, col: int, hint: str) -> NoReturn:
    raise LoadError(Diagnostic(code, message, file, line, col, hint=hint))


def _syntax_hint(problem: str) -> str:
    if "tab" in problem:
        return "indent with spaces; YAML does not allow tabs for indentation"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains ': ' or put a space after each key's colon"
    return "check the indentation and quoting around this place"


def _guard(events: Iterator[Any], file: str, directive_line: int = 1) -> None:
    """Reject directives, tags, bombs and depth before any node is built."""
    frames: list[list[Any]] = [[None, 0]]  # [anchor, expanded size so far]
    sizes: dict[str, int] = {}
    aliases = documents = 0
    for e in events:
        m = e.start_mark
        line, col = (m.line + 1, m.column + 1) if m else (1, 1)
        if isinstance(e, ev.DocumentStartEvent):
            documents += 1
            if documents > 1:
                _fail(
                    "ASM010",
                    "a manifest holds one YAML document; found another",
                    file,
                    line,
                    col,
                    "remove the `---` separator, or move the second document to its own file",
                )
            if e.version and tuple(e.version) != (1, 2):
                version = ".".join(map(str, e.version))
                _fail(
                    "ASM004",
                    f"%YAML {version} is not supported; manifests are YAML 1.2",
                    file,
                    line,
                    col,
                    "remove the %YAML directive (YAML 1.2 is the default)",
                )
        if getattr(e, "tag", None) is not None:
            _fail(
                "ASM005",
                f"explicit YAML tag {e.tag!r} is not allowed",
                file,
                line,
                col,
                "remove the tag: values are plain strings, numbers, booleans, lists and maps",
            )
        if isinstance(e, ev.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                _fail(
                    "ASM007",
                    f"more than {MAX_ALIASES} aliases",
                    file,
                    line,
                    col,
                    "use fewer `*alias` references (or `include:`)",
                )
            size = sizes.get(e.anchor, 1)
            frames[-1][1] += size
        elif isinstance(e, ev.ScalarEvent):
            frames[-1][1] += 1
            if e.anchor:
                sizes[e.anchor] = 1
        elif isinstance(e, ev.CollectionStartEvent):
            frames.append([e.anchor, 1])
            if len(frames) - 1 > MAX_DEPTH:
                _fail(
                    "ASM009",
                    f"nesting deeper than {MAX_DEPTH} levels",
                    file,
                    line,
                    col,
                    "flatten the structure",
                )
        elif isinstance(e, ev.CollectionEndEvent):
            anchor, size = frames.pop()
            if anchor:
                sizes[anchor] = size
            frames[-1][1] += size
        if frames[0][1] + sum(f[1] for f in frames[1:]) > MAX_NODES:
            _fail(
                "ASM008",
                f"the document expands to more than {MAX_NODES:,} nodes",
                file,
                line,
                col,
                "aliases that nest aliases multiply: this looks like a YAML bomb",
            )


def _mark(node: Node, file: str) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node: Node, path: Path, doc: Document) -> Any:
    doc.marks.setdefault(path, _mark(node, doc.file))
    if isinstance(node, ScalarNode):
        return _scalar(node)
    if isinstance(node, SequenceNode):
        return [_build(item, (*path, i), doc) for i, item in enumerate(node.value)]
    assert isinstance(node, MappingNode)
    out: dict[str, Any] = {}
    merged: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _TAG + "merge":
            merged.update(_merge(value_node, path, doc))
            continue
        key = _scalar(key_node) if isinstance(key_node, ScalarNode) else None
        if not isinstance(key, str):
            m = _mark(key_node, doc.file)
            _fail(
                "ASM011",
                f"mapping keys must be strings, got {_describe(key_node)}",
                doc.file,
                m.line,
                m.col,
                "quote the key",
            )
        if key in out:
            m, first = _mark(key_node, doc.file), doc.key_marks[(*path, key)]
            _fail(
                "ASM006",
                f"duplicate key {key!r} (first at line {first.line})",
                doc.file,
                m.line,
                m.col,
                "keep one of them; YAML maps cannot repeat a key",
            )
        doc.key_marks[(*path, key)] = _mark(key_node, doc.file)
        out[key] = _build(value_node, (*path, key), doc)
    for key, value in merged.items():
        out.setdefault(key, value)
    return out


def _merge(node: Node, path: Path, doc: Document) -> dict[str, Any]:
    """``<<: *base`` (or a list of them): keys not set here come from the merged maps."""
    sources = node.value if isinstance(node, SequenceNode) else [node]
    out: dict[str, Any] = {}
    for src in reversed(sources):
        if not isinstance(src, MappingNode):
            m = _mark(src, doc.file)
            _fail(
                "ASM013",
                "`<<` merges maps only",
                doc.file,
                m.line,
                m.col,
                "write `<<: *anchor` where the anchor names a mapping",
            )
        out.update(_build(src, path, doc))
    return out


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    return "a list" if isinstance(node, SequenceNode) else "a non-string"


def _scalar(node: ScalarNode) -> Any:
    """YAML 1.2 core schema: null, bool, int, float; everything else stays text."""
    tag, value = node.tag, node.value
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        return value.lower() == "true"
    if tag == _TAG + "int":
        digits = value.replace("_", "")
        sign = -1 if digits.startswith("-") else 1
        body = digits.lstrip("+-")
        base = 16 if body[:2].lower() == "0x" else 8 if body[:2].lower() == "0o" else 10
        return sign * int(body[2:] if base != 10 else body, base)
    if tag == _TAG + "float":
        low = value.lower().replace("_", "")
        if low.endswith(".inf"):
            return -math.inf if low.startswith("-") else math.inf
        if low == ".nan":
            return math.nan
        return float(low)
    return str(value)


def scalar_from_text(text: str) -> Any:
    """Type a string the way YAML types a plain scalar (``8080`` -> 8080, ``true`` -> True)."""
    yaml = YAML(typ="safe", pure=True)
    resolver = yaml.resolver
    tag = resolver.resolve(ScalarNode, text, (True, False))
    return _scalar(ScalarNode(str(tag), text))
