"""A manifest loaded with its includes and interpolated, with the place of every value."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path as FsPath
from typing import Any

from ._diagnostics import Diagnostic, Mark
from ._yaml import Document, LoadError, Path, load, scalar_from_text

SECTIONS = ("resources", "middleware", "events", "contexts", "tags", "tasks", "hooks")
KIND_OF_SECTION = {
    "resources": "resource",
    "middleware": "middleware",
    "events": "event",
    "contexts": "context",
    "tags": "tag",
    "tasks": "task",
    "hooks": "hook",
}
REDACTED = "<redacted>"
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_REF = re.compile(
    r"^(?:config\.(?P<config>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)"
    r"|env\.(?P<env>[A-Za-z_]\w*)(?::-(?P<default>.*))?)$",
    re.S,
)


class Manifest:
    """The merged, interpolated manifest; ``place(path)`` finds where a value came from."""

    def __init__(self, file: str, base_dir: FsPath) -> None:
        self.file = file
        self.base_dir = base_dir
        self.data: dict[str, Any] = {}
        self.marks: dict[Path, Mark] = {}
        self.key_marks: dict[Path, Mark] = {}
        self.sources: dict[str, list[str]] = {}
        self.secrets: set[Path] = set()
        self.secret_values: set[str] = set()  # env texts to scrub from every diagnostic
        self.interpolated: set[Path] = set()
        self.unresolved: set[Path] = set()  # a reference failed here: reported once

    @property
    def id(self) -> str:
        return str(self.data.get("id", ""))

    def place(self, path: Path, *, key: bool = False) -> Mark:
        """The mark of ``path`` (its key's with ``key=True``), else of its nearest ancestor."""
        if key and path in self.key_marks:
            return self.key_marks[path]
        for n in range(len(path), -1, -1):
            if path[:n] in self.marks:
                return self.marks[path[:n]]
        return Mark(self.file, 1, 1)

    def components(self, section: str) -> Iterator[tuple[str, dict[str, Any], Path]]:
        """``(id, body, path)`` for each well-formed component of ``section``."""
        entries = self.data.get(section)
        if isinstance(entries, dict):
            for id, body in entries.items():
                yield id, body if isinstance(body, dict) else {}, (section, id)

    def is_secret(self, path: Path) -> bool:
        """True when the value at ``path`` (or inside it) came from the environment."""
        n = len(path)
        return any(s[:n] == path or path[: len(s)] == s for s in self.secrets)


Sink = Callable[[Diagnostic], None]


def read(
    path: str,
    sink: Sink,
    env: Mapping[str, str] | None = None,
    overlays: Sequence[str] = (),
) -> Manifest | None:
    """Load ``path`` and its includes, lay ``overlays`` over it in order, then
    interpolate; ``None`` if it cannot be read at all."""
    fs = FsPath(path)
    manifest = Manifest(_display(fs), fs.resolve().parent)
    doc = _load_file(fs, sink, None)
    if doc is None:
        return None
    if not isinstance(doc.data, dict):
        at = doc.marks.get((), Mark(doc.file, 1, 1))
        sink(
            Diagnostic(
                "ASM102",
                "a manifest is a mapping (key: value lines)",
                doc.file,
                at.line,
                at.col,
                hint="start the file with `assemble: 1` and `id: my_app`",
            )
        )
        return None
    _adopt(manifest, doc, ())
    manifest.data = doc.data
    _include(manifest, doc, fs.resolve(), sink, [fs.resolve()])
    for overlay in overlays:
        _overlay(manifest, FsPath(overlay), sink)
    Interpolator(manifest, os.environ if env is None else env, sink).run()
    return manifest


def _is_mapping(doc: Document, what: str, hint: str, sink: Sink) -> bool:
    """Whether a loaded file (an overlay, an include) is a mapping; ASM102 at its start if not."""
    if isinstance(doc.data, dict):
        return True
    at = doc.marks.get((), Mark(doc.file, 1, 1))
    sink(
        Diagnostic(
            "ASM102", f"{what} {doc.file} is not a mapping", doc.file, at.line, at.col, hint=hint
        )
    )
    return False


def _overlay(manifest: Manifest, fs: FsPath, sink: Sink) -> None:
    """Lay the overlay file ``fs`` over the manifest: maps merge key by key (so a section
    merges definition by definition, and a definition key by key), anything else (a
    scalar, a list) replaces what was there. Every value keeps the place it came from."""
    doc = _load_file(fs, sink, None)
    if doc is None:
        return
    if not _is_mapping(
        doc,
        "overlay",
        "an overlay holds the keys it changes: `resources: {db: {config: ...}}`",
        sink,
    ):
        return
    manifest.sources[doc.file] = doc.lines
    data = dict(doc.data)
    if "include" in data:
        at = doc.key_marks.get(("include",), Mark(doc.file, 1, 1))
        sink(
            Diagnostic(
                "ASM103",
                "an overlay may not hold `include`",
                doc.file,
                at.line,
                at.col,
                hint="include the files from the manifest, or pass several --overlay",
            )
        )
        del data["include"]
    _lay(manifest, manifest.data, data, (), doc)


def _lay(
    manifest: Manifest, target: dict[str, Any], layer: dict[str, Any], at: Path, doc: Document
) -> None:
    for key, value in layer.items():
        path = (*at, key)
        below = target.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            _lay(manifest, below, value, path, doc)
            continue
        target[key] = value
        n = len(path)
        for marks, theirs in ((manifest.marks, doc.marks), (manifest.key_marks, doc.key_marks)):
            for old in [p for p in marks if p[:n] == path]:
                del marks[old]
            marks.update((p, m) for p, m in theirs.items() if p[:n] == path)


def _display(path: FsPath) -> str:
    try:
        return str(path.resolve().relative_to(FsPath.cwd()))
    except ValueError:
        return str(path)


def _load_file(fs: FsPath, sink: Sink, at: Mark | None) -> Document | None:
    name = _display(fs)
    try:
        text = fs.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = at or Mark(name, 0, 0)
        code = "ASM701" if at else "ASM001"
        sink(
            Diagnostic(
                code,
                f"cannot read {name}: {reason}",
                where.file,
                where.line,
                where.col,
                hint="save the file as UTF-8"
                if isinstance(exc, UnicodeDecodeError)
                else (
                    "check the path (relative paths start at the manifest's folder)"
                    if at
                    else "check the path (relative to the current directory)"
                ),
            )
        )
        return None
    try:
        return load(text, name)
    except LoadError as exc:
        sink(exc.diagnostic)
        return None


def _adopt(manifest: Manifest, doc: Document, prefix: Path) -> None:
    manifest.sources[doc.file] = doc.lines
    for path, mark in doc.marks.items():
        manifest.marks.setdefault((*prefix, *path), mark)
    for path, mark in doc.key_marks.items():
        manifest.key_marks.setdefault((*prefix, *path), mark)


def _include(
    manifest: Manifest, doc: Document, here: FsPath, sink: Sink, chain: list[FsPath]
) -> None:
    includes = doc.data.get("include")
    if not isinstance(includes, list):
        return
    for i, rel in enumerate(includes):
        if not isinstance(rel, str):
            continue  # the schema reports it
        at = doc.marks.get(("include", i), Mark(doc.file, 1, 1))
        target = (here.parent / rel).resolve()
        if target in chain:
            loop = " -> ".join(_display(p) for p in [*chain, target])
            sink(
                Diagnostic(
                    "ASM702",
                    f"include cycle: {loop}",
                    at.file,
                    at.line,
                    at.col,
                    hint="an included file must not include its includer",
                )
            )
            continue
        fragment = _load_file(target, sink, at)
        if fragment is None:
            continue
        if not _is_mapping(
            fragment, "included file", "an include holds sections such as `tasks:`", sink
        ):
            continue
        manifest.sources[fragment.file] = fragment.lines
        _merge_fragment(manifest, fragment, sink)
        _include(manifest, fragment, target, sink, [*chain, target])


def _merge_fragment(manifest: Manifest, doc: Document, sink: Sink) -> None:
    for key, value in doc.data.items():
        mark = doc.key_marks.get((key,), Mark(doc.file, 1, 1))
        if key in ("assemble", "id", "include"):
            continue
        if key not in (*SECTIONS, "config") or not isinstance(value, dict):
            sink(
                Diagnostic(
                    "ASM103",
                    f"an included file may hold sections and config, not {key!r}",
                    mark.file,
                    mark.line,
                    mark.col,
                    hint=f"allowed here: config, {', '.join(SECTIONS)}",
                )
            )
            continue
        target = manifest.data.setdefault(key, {})
        if not isinstance(target, dict):
            continue
        for id, body in value.items():
            if id in target:
                first = manifest.place((key, id), key=True)
                m = doc.key_marks.get((key, id), mark)
                sink(
                    Diagnostic(
                        "ASM204",
                        f"{key} id {id!r} is defined twice (first at {first.file}:{first.line})",
                        m.file,
                        m.line,
                        m.col,
                        hint="ids are global across a manifest and its includes",
                    )
                )
                continue
            target[id] = body
            sub = Document(
                doc.file,
                body,
                doc.lines,
                {p[2:]: mk for p, mk in doc.marks.items() if p[:2] == (key, id)},
                {p[2:]: mk for p, mk in doc.key_marks.items() if p[:2] == (key, id)},
            )
            _adopt(manifest, sub, (key, id))
            manifest.key_marks.setdefault((key, id), doc.key_marks.get((key, id), mark))


class Interpolator:
    """``${config.X}``, ``${env.X}``, ``${env.X:-default}`` on values; ``$${`` escapes.

    A value that is exactly one reference takes the type of what it resolves to;
    inside longer text it is text. Values from the environment are marked secret.
    """

    def __init__(self, manifest: Manifest, env: Mapping[str, str], sink: Sink) -> None:
        self.m, self.env, self.sink = manifest, env, sink
        self.config = manifest.data.get("config")
        self.resolving: list[str] = []
        self.done: set[str] = set()

    def run(self) -> None:
        data = self.m.data
        if isinstance(self.config, dict):
            for name in list(self.config):
                self.config_value(name, ("config", name))
        for key in list(data):
            if key not in ("include", "config"):
                data[key] = self.walk(data[key], (key,))

    def walk(self, value: Any, path: Path) -> Any:
        if isinstance(value, str):
            return self.string(value, path)
        if isinstance(value, dict):
            for k in list(value):
                value[k] = self.walk(value[k], (*path, k))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                value[i] = self.walk(item, (*path, i))
        return value

    def string(self, text: str, path: Path) -> Any:
        if "$" not in text:
            return text
        parts: list[Any] = []
        pos, secret = 0, False
        for match in _TOKEN.finditer(text):
            self.literal(text[pos : match.start()], path)
            parts.append(text[pos : match.start()])
            pos = match.end()
            if match.group(0) == "$${":
                parts.append("${")
                continue
            value, from_env = self.resolve(match.group(1), path)
            secret = secret or from_env
            whole = match.start() == 0 and match.end() == len(text)
            self.m.interpolated.add(path)
            if whole:
                self.mark_secret(path, secret)
                return value.value if isinstance(value, _Raw) else value
            if isinstance(value, _Raw):  # inside text, the environment's text as it is
                value = value.text
            if isinstance(value, dict | list):
                self.error(
                    "ASM303",
                    path,
                    f"${{{match.group(1)}}} is a "
                    f"{'map' if isinstance(value, dict) else 'list'}, not text",
                    "use the reference as the whole value to insert a map or list",
                )
                value = ""
            parts.append("" if value is None else _text(value))
        self.literal(text[pos:], path)
        parts.append(text[pos:])
        self.mark_secret(path, secret)
        return "".join(parts)

    def literal(self, text: str, path: Path) -> None:
        if "${" in text:
            self.error(
                "ASM303",
                path,
                "`${` is not closed with `}`",
                "close the reference (${env.NAME}), or write $${ for a literal ${",
            )

    def mark_secret(self, path: Path, secret: bool) -> None:
        if secret:
            self.m.secrets.add(path)

    def resolve(self, ref: str, path: Path) -> tuple[Any, bool]:
        match = _REF.match(ref.strip())
        if match is None:
            self.error(
                "ASM303",
                path,
                f"cannot read ${{{ref}}}",
                "write ${config.NAME}, ${env.NAME} or ${env.NAME:-default}; $${ escapes",
            )
            return None, False
        if match.group("env"):
            name = match.group("env")
            if name in self.env:
                raw = self.env[name]
                if len(raw) >= 3:
                    self.m.secret_values.add(raw)
                return _Raw(scalar_from_text(raw), raw), True
            if match.group("default") is not None:
                raw = match.group("default")
                return _Raw(scalar_from_text(raw), raw), False
            self.error(
                "ASM301",
                path,
                f"environment variable {name} is not set",
                f"set {name}, or give a default: ${{env.{name}:-value}}",
            )
            return None, False
        return self.config_value(match.group("config"), path)

    def config_value(self, dotted: str, path: Path) -> tuple[Any, bool]:
        names = dotted.split(".")
        node: Any = self.config
        for i, name in enumerate(names):
            if not isinstance(node, dict) or name not in node:
                known = sorted(node) if isinstance(node, dict) else []
                guess = near(name, known)
                where = ".".join(["config", *names[:i]])
                self.error(
                    "ASM302",
                    path,
                    f"{where} has no {name!r}",
                    f"did you mean {guess!r}?" if guess else "declare it under `config:`",
                )
                return None, False
            node = node[name]
        cpath: Path = ("config", *names)
        prefixes = {".".join(names[:i]) for i in range(1, len(names) + 1)}
        if not prefixes & self.done:  # resolve the config value itself first, once
            if dotted in self.resolving:
                loop = " -> ".join([*self.resolving, dotted])
                self.error(
                    "ASM304",
                    path,
                    f"config values refer to each other: {loop}",
                    "break the loop with a literal value",
                )
                return None, False
            self.resolving.append(dotted)
            resolved = self.walk(node, cpath)
            self.resolving.pop()
            self.done.add(dotted)
            _set(self.config, names, resolved)
            node = resolved
        # Where the config value's own ${...} failed (reported there), the value it gives
        # here is not what the user meant either: no schema error is reported for it too.
        for u in [u for u in self.m.unresolved if u[: len(cpath)] == cpath]:
            self.m.unresolved.add((*path, *u[len(cpath) :]))
        return node, self.m.is_secret(cpath)

    def error(self, code: str, path: Path, message: str, hint: str) -> None:
        self.m.unresolved.add(path)
        m = self.m.place(path)
        self.sink(Diagnostic(code, message, m.file, m.line, m.col, pointer(path), hint))


class _Raw:
    """A value from the environment (or a default): typed, and its text as written."""

    __slots__ = ("text", "value")

    def __init__(self, value: Any, text: str) -> None:
        self.value, self.text = value, text


def _set(root: Any, names: list[str], value: Any) -> None:
    for name in names[:-1]:
        root = root[name]
    root[names[-1]] = value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def near(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to ``word``, if one is close enough (for "did you mean")."""
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def pointer(path: Path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
