"""Loading one YAML file safely: a guard over the event stream, then positions for every node.

The guard runs before anything is built, so a bomb is rejected after reading its
events once: no alias is ever expanded beyond the caps (DESIGN §8).
"""

from __future__ import annotations

import copy
import io
import math
import os
import stat
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml import events as ev
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode

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


class Refused(Exception):
    """A file that is not read at all (a FIFO, a device, a directory): ``code``, ``hint``.

    The caller puts it where it belongs (the include entry, or the file itself).
    """

    def __init__(self, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


class TooBig(Exception):
    """A file holds more than the bytes it may: ``size`` exactly, or at least when not
    ``exact`` (it was read up to the limit and one byte more)."""

    def __init__(self, size: int, *, exact: bool) -> None:
        super().__init__(f"{size:,} bytes")
        self.size, self.exact = size, exact

    @property
    def amount(self) -> str:
        return f"{self.size:,}" if self.exact else f"more than {self.size - 1:,}"


def read_capped(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file at ``path``; :class:`TooBig` past ``limit`` bytes.

    Never blocks and never reads more than ``limit + 1`` bytes: a FIFO, a device such
    as ``/dev/zero``, a directory or a socket is refused (:class:`Refused`) from its
    ``stat`` before it is opened, and again from the open descriptor (the path may have
    changed in between).
    """
    _regular(os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        _regular(info.st_mode)
        if info.st_size > limit:
            raise TooBig(info.st_size, exact=True)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:  # it grew after fstat, or reports no size (as /proc files do)
        raise TooBig(size, exact=False)
    return b"".join(chunks)


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def _regular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    raise Refused(
        "ASM704",
        f"is {kind}, not a regular file",
        "manifests, includes and overlays are plain YAML files",
    )


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
    doc = Document(file, None, text.splitlines())
    builder = _Builder(doc, yaml.resolver)
    try:
        for event in yaml.parse(io.StringIO(text)):
            builder.feed(event)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        _fail("ASM003", f"YAML syntax error: {problem}", file, line, col, _syntax_hint(problem))
    except YAMLError as exc:  # pragma: no cover  # ruamel marks every syntax error
        _fail("ASM003", f"YAML syntax error: {exc}", file, 1, 1, "")
    if not builder.documents or builder.empty:
        _fail(
            "ASM012",
            "the file is empty",
            file,
            1,
            1,
            "a manifest is a mapping that starts with `assemble: 1`",
        )
    return doc


def _fail(code: str, message: str, file: str, line: int, col: int, hint: str) -> NoReturn:
    raise LoadError(Diagnostic(code, message, file, line, col, hint=hint))


def _syntax_hint(problem: str) -> str:
    if "tab" in problem or "'\\t'" in problem or "\t" in problem:
        return "indent with spaces; YAML does not allow tabs for indentation"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains ': ' or put a space after each key's colon"
    return "check the indentation and quoting around this place"


class _Frame:
    """An open map or list while events stream in."""

    __slots__ = ("anchor", "key", "key_mark", "merges", "path", "size", "value")

    def __init__(self, value: Any, path: Path, anchor: str | None) -> None:
        self.value, self.path, self.anchor = value, path, anchor
        self.size = 1  # nodes this collection expands to, aliases included
        self.key: str | None = None
        self.key_mark: Mark | None = None
        self.merges: list[tuple[Any, Mark]] | None = None


_MERGE = object()


class _Builder:
    """One pass over the events: the guard (DESIGN §8) and the data, with every place.

    Caps are checked before an alias is copied, so a bomb is refused after reading
    its few hundred events, never expanded.
    """

    def __init__(self, doc: Document, resolver: Any) -> None:
        self.doc, self.resolver = doc, resolver
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.aliases = self.documents = self.total = 0
        self.empty = True

    def mark(self, e: Any) -> Mark:
        m = e.start_mark
        return Mark(self.doc.file, m.line + 1, m.column + 1) if m else Mark(self.doc.file, 1, 1)

    def fail(self, code: str, message: str, at: Mark, hint: str) -> NoReturn:
        _fail(code, message, at.file, at.line, at.col, hint)

    def feed(self, e: Any) -> None:
        if isinstance(e, ev.DocumentStartEvent):
            self.document_start(e)
        elif getattr(e, "tag", None) is not None:
            tag = str(e.tag).replace(_TAG, "!!")
            self.fail(
                "ASM005",
                f"explicit YAML tag {tag!r} is not allowed",
                self.mark(e),
                "remove the tag: values are plain strings, numbers, booleans, lists and maps",
            )
        elif isinstance(e, ev.ScalarEvent):
            self.scalar(e)
        elif isinstance(e, ev.AliasEvent):
            self.alias(e)
        elif isinstance(e, ev.CollectionStartEvent):
            self.start(e)
        elif isinstance(e, ev.CollectionEndEvent):
            self.end()

    def document_start(self, e: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            self.fail(
                "ASM010",
                "a manifest holds one YAML document; found another",
                self.mark(e),
                "remove the `---` separator, or move the second document to its own file",
            )
        if e.version and tuple(e.version) != (1, 2):
            version = ".".join(map(str, e.version))
            line = next((i for i, t in enumerate(self.doc.lines, 1) if t.startswith("%")), 1)
            self.fail(
                "ASM004",
                f"%YAML {version} is not supported; manifests are YAML 1.2",
                Mark(self.doc.file, line, 1),
                "remove the %YAML directive (1.2 is the default)",
            )

    def count(self, size: int, at: Mark) -> None:
        self.total += size
        if self.total > MAX_NODES:
            self.fail(
                "ASM008",
                f"the document expands to more than {MAX_NODES:,} nodes",
                at,
                "aliases that nest aliases multiply: this looks like a YAML bomb",
            )

    def scalar(self, e: Any) -> None:
        at = self.mark(e)
        self.count(1, at)
        tag = self.resolver.resolve(ScalarNode, e.value, e.implicit)
        if e.anchor:
            self.anchors[e.anchor] = (_scalar(ScalarNode(tag, e.value)), 1)
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.value, dict) and frame.key is None:
            self.map_key(frame, e.value, tag, at)
            return
        self.place(_scalar(ScalarNode(tag, e.value)), at, 1, e.anchor)

    def map_key(self, frame: _Frame, text: str, tag: str, at: Mark) -> None:
        if tag == _TAG + "merge":
            frame.key, frame.key_mark = _MERGE, at  # type: ignore[assignment]
            return
        key = _scalar(ScalarNode(tag, text))
        if not isinstance(key, str):
            key = text  # `1: x` or `true: x`: YAML types the key; a manifest key is its text
        path = (*frame.path, key)
        if key in frame.value:
            first = self.doc.key_marks[path]
            self.fail(
                "ASM006",
                f"duplicate key {key!r} (first at line {first.line})",
                at,
                "keep one of them; YAML maps cannot repeat a key",
            )
        frame.key, frame.key_mark = key, at
        self.doc.key_marks[path] = at

    def alias(self, e: Any) -> None:
        at = self.mark(e)
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            self.fail(
                "ASM007",
                f"more than {MAX_ALIASES} aliases",
                at,
                "use fewer `*alias` references (or `include:`)",
            )
        if e.anchor not in self.anchors:
            self.fail(
                "ASM003",
                f"YAML error: alias *{e.anchor} refers to no anchor",
                at,
                f"define `&{e.anchor}` on a value before this alias",
            )
        value, size = self.anchors[e.anchor]
        self.count(size, at)
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.value, dict) and frame.key is None:
            self.fail("ASM011", "mapping keys must be strings, got an alias", at, "write the key")
        self.place(copy.deepcopy(value), at, size, None)

    def start(self, e: Any) -> None:
        at = self.mark(e)
        self.count(1, at)
        if len(self.stack) >= MAX_DEPTH:
            self.fail(
                "ASM009", f"nesting deeper than {MAX_DEPTH} levels", at, "flatten the structure"
            )
        parent = self.stack[-1] if self.stack else None
        if parent is not None and isinstance(parent.value, dict) and parent.key is None:
            kind = "a mapping" if isinstance(e, ev.MappingStartEvent) else "a list"
            self.fail("ASM011", f"mapping keys must be strings, got {kind}", at, "quote the key")
        path = self.child_path(parent)
        self.doc.marks.setdefault(path, at)
        value: Any = {} if isinstance(e, ev.MappingStartEvent) else []
        self.stack.append(_Frame(value, path, e.anchor))

    def end(self) -> None:
        frame = self.stack.pop()
        if frame.merges:
            for merged, at in frame.merges:
                for source in merged if isinstance(merged, list) else [merged]:
                    if not isinstance(source, dict):
                        self.fail(
                            "ASM013",
                            "`<<` merges maps only",
                            at,
                            "write `<<: *anchor` where the anchor names a mapping",
                        )
                    for k, v in source.items():
                        frame.value.setdefault(k, v)
        if frame.anchor:
            self.anchors[frame.anchor] = (frame.value, frame.size)
        self.place(frame.value, self.doc.marks[frame.path], frame.size, None, collection=True)

    def child_path(self, parent: _Frame | None) -> Path:
        if parent is None:
            return ()
        if isinstance(parent.value, list):
            return (*parent.path, len(parent.value))
        if parent.key is _MERGE:
            return parent.path
        assert parent.key is not None
        return (*parent.path, parent.key)

    def place(
        self, value: Any, at: Mark, size: int, anchor: str | None, *, collection: bool = False
    ) -> None:
        self.empty = False
        parent = self.stack[-1] if self.stack else None
        if parent is None:
            self.doc.data = value
            return
        parent.size += size
        if isinstance(parent.value, list):
            if not collection:
                self.doc.marks.setdefault((*parent.path, len(parent.value)), at)
            parent.value.append(value)
            return
        if parent.key is _MERGE:
            parent.merges = [*(parent.merges or []), (value, parent.key_mark or at)]
        else:
            assert parent.key is not None
            if not collection:
                self.doc.marks.setdefault((*parent.path, parent.key), at)
            parent.value[parent.key] = value
        parent.key = None


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
    if text == "":
        return ""  # an empty variable is empty text, not YAML's null
    yaml = YAML(typ="safe", pure=True)
    resolver = yaml.resolver
    tag = resolver.resolve(ScalarNode, text, (True, False))
    return _scalar(ScalarNode(str(tag), text))
