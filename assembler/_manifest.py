"""A manifest loaded with its includes and interpolated, with the place of every value."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path as FsPath
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

import runner

from ._diagnostics import Diagnostic, Mark
from ._yaml import (
    MAX_BYTES,
    MAX_DEPTH,
    Document,
    LoadError,
    Path,
    Refused,
    TooBig,
    load,
    read_capped,
    scalar_from_text,
)

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
#: What a manifest may read in all, with its includes and overlays (each file: MAX_BYTES).
MAX_TOTAL_BYTES = 4 * MAX_BYTES
#: How many files (the manifest, its includes, its overlays) one manifest may read.
MAX_FILES = 256
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_REF = re.compile(
    r"^(?:config\.(?P<config>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)"
    r"|env\.(?P<env>[A-Za-z_]\w*)(?::-(?P<default>.*))?)$",
    re.S,
)


class _PathIndex:
    """A set of paths with every prefix of them indexed, so that "is one of them at or
    under this path?" is one lookup. A manifest can hold 100 000 values: a scan per
    reference would make interpolating one quadratic (minutes for a hostile file)."""

    __slots__ = ("count", "paths", "prefixes")

    def __init__(self, paths: set[Path]) -> None:
        self.paths, self.prefixes, self.count = paths, set[Path](), 0

    def add(self, path: Path) -> None:
        self.sync()
        self.paths.add(path)
        self.index(path)
        self.count = len(self.paths)

    def sync(self) -> None:
        if self.count != len(self.paths):  # added to the set itself: index it all again
            self.prefixes.clear()
            for path in self.paths:
                self.index(path)
            self.count = len(self.paths)

    def index(self, path: Path) -> None:
        for n in range(len(path), -1, -1):
            if path[:n] in self.prefixes:
                return  # and so are the shorter ones
            self.prefixes.add(path[:n])

    def under(self, path: Path) -> bool:
        """Whether a path of the set is ``path`` or lies inside it."""
        self.sync()
        return path in self.prefixes

    def above(self, path: Path) -> bool:
        """Whether a path of the set is ``path`` or one of its ancestors."""
        return any(path[:n] in self.paths for n in range(len(path) + 1))


class Manifest:
    """The merged, interpolated manifest; ``place(path)`` finds where a value came from."""

    def __init__(self, file: str, base_dir: FsPath) -> None:
        self.file = file
        self.base_dir = base_dir
        self.data: dict[str, Any] = {}
        self.marks: dict[Path, Mark] = {}
        self.key_marks: dict[Path, Mark] = {}
        self.sources: dict[str, list[str]] = {}
        self.secrets: set[Path] = set()  # values from the environment: redacted in place
        self.secret_values: set[str] = set()  # secret texts to scrub from every message
        self.interpolated: set[Path] = set()
        self.unresolved: set[Path] = set()  # a reference failed here: reported once
        self.env_defaults: dict[Path, str] = {}  # a ${env.X:-default} was used: X unset
        self.origins: dict[Path, Path] = {}  # a whole ${config.X} here came from there
        self._secret = _PathIndex(self.secrets)
        self._failed = _PathIndex(self.unresolved)
        self._failed_in: dict[Path, bool] = {}

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
        return self._secret.under(path) or self._secret.above(path)

    def failed(self, path: Path) -> bool:
        """Whether a ``${...}`` failed (and was reported) for the value at ``path``, here
        or in the config value it came from."""
        return any(step in self.unresolved for step in self._steps(path))

    def failed_in(self, path: Path) -> bool:
        """Whether a ``${...}`` failed for the value at ``path`` or anywhere inside it."""
        if self._failed.count != len(self.unresolved):
            self._failed_in.clear()  # more failures since: what was known may be stale
        found = self._failed_in.get(path)
        if found is None:
            found = self._failed_in[path] = self._find_failed(path)
        return found

    def _find_failed(self, path: Path) -> bool:
        if self._failed.under(path):
            return True
        steps = self._steps(path)
        next(steps)
        mapped = next(steps, None)
        if mapped is not None:  # the value here is a config value's: look there, once
            return self.failed_in(mapped)
        # Inside, a whole ${config.X} is followed to its config value (looked at once),
        # never walked again where it is used.
        return any(self.failed_in(self.origins[at]) for at in self._origins_in(path))

    def _origins_in(self, path: Path) -> Iterator[Path]:
        """The paths of whole ``${config.X}`` references inside the value at ``path``."""
        stack = [(path, _get(self.data, path))]
        while stack:
            at, value = stack.pop()
            for key, child in _children(value):
                if (*at, key) in self.origins:
                    yield (*at, key)
                elif isinstance(child, dict | list):
                    stack.append(((*at, key), child))

    def mark_secret(self, path: Path) -> None:
        """The value at ``path`` came from the environment."""
        self._secret.add(path)

    def mark_failed(self, path: Path) -> None:
        """A ``${...}`` failed for the value at ``path`` (and was reported)."""
        self._failed.add(path)

    def source(self, path: Path) -> Path:
        """Where the value at ``path`` is written: through whole ``${config.X}`` references
        to the config value they name (``path`` itself when it is written in place)."""
        return list(self._steps(path))[-1]

    def env_default(self, path: Path) -> str | None:
        """The variable ``X`` when the value at ``path`` is the default of a
        ``${env.X:-default}`` (``X`` unset), here or in the config value it came from."""
        return next(
            (self.env_defaults[p] for p in self._steps(path) if p in self.env_defaults), None
        )

    def _steps(self, path: Path) -> Iterator[Path]:
        yield path
        for _ in range(MAX_DEPTH):  # config loops are refused (ASM304); this only bounds
            found = next((n for n in range(len(path), 0, -1) if path[:n] in self.origins), 0)
            if not found:
                return
            path = (*self.origins[path[:found]], *path[found:])
            yield path


Sink = Callable[[Diagnostic], None]


def read(
    path: str,
    sink: Sink,
    env: Mapping[str, str] | None = None,
    overlays: Sequence[str] = (),
    roots: Sequence[str] = (),
) -> Manifest | None:
    """Load ``path`` and its includes, lay ``overlays`` over it in order, then
    interpolate; ``None`` if it cannot be read at all.

    Includes must lie (after symlinks) under the manifest's folder or one of ``roots``
    (``--root``); every file read counts against the caps of :class:`_Files`.
    """
    fs = FsPath(path)
    top = _resolved(fs)
    manifest = Manifest(_display(fs), top.parent)
    files = _Files(sink, [top.parent, *(_resolved(FsPath(r)) for r in roots)])
    doc = files.load(fs, None)
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
    _include(manifest, doc, top, files, [top])
    for overlay in overlays:
        _overlay(manifest, FsPath(overlay), files)
    Interpolator(manifest, os.environ if env is None else env, sink).run()
    return manifest


def _resolved(fs: FsPath) -> FsPath:
    """``fs`` made absolute with its symlinks followed, as far as they go."""
    try:
        return fs.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL in the name
        return FsPath(os.path.abspath(fs))


class _Files:
    """What one manifest may read: regular files under the caps, includes under its roots.

    The manifest and its overlays are trusted like the command line that names them;
    an include is a path written in a file, so it must resolve (after symlinks) under
    the manifest's folder or a ``--root`` folder, and be named ``*.yaml``/``*.yml``.
    """

    def __init__(self, sink: Sink, roots: Sequence[FsPath]) -> None:
        self.sink, self.roots = sink, list(dict.fromkeys(roots))
        self.total, self.files = MAX_TOTAL_BYTES, 0
        self.left = self.total

    def refuse(self, code: str, message: str, at: Mark, hint: str) -> None:
        self.sink(Diagnostic(code, message, at.file, at.line, at.col, hint=hint))

    def load(self, fs: FsPath, at: Mark | None, label: str = "") -> Document | None:
        """The file parsed; ``None`` (reported at ``at``, an include entry, or at the
        file itself) when it cannot be read, is refused, or is not valid YAML."""
        name = _display(fs)
        text = self.text(fs, name, at, label or name)
        if text is None:
            return None
        try:
            return load(text, name)
        except LoadError as exc:
            self.sink(exc.diagnostic)
            return None

    def text(self, fs: FsPath, name: str, at: Mark | None, label: str) -> str | None:
        self.files += 1
        if self.files > MAX_FILES + 1:
            return None  # the first file past the cap was reported; the rest are not read
        try:
            if self.files > MAX_FILES:
                raise Refused(
                    "ASM706",
                    f"is one file too many: a manifest reads at most {MAX_FILES} files "
                    "with its includes and overlays (this and later ones are not read)",
                    "include each fragment once, from fewer places",
                )
            data = read_capped(fs, min(MAX_BYTES, self.left))
            self.left -= len(data)
            return data.decode("utf-8")
        except TooBig as exc:
            self.too_big(exc, label, at or Mark(name, 1, 1))
        except Refused as exc:
            self.refuse(exc.code, f"{label} {exc.message}", at or Mark(name, 0, 0), exc.hint)
        except UnicodeDecodeError as exc:
            self.unreadable(
                name, at, f"not UTF-8 text (at byte {exc.start:,})", "save the file as UTF-8"
            )
        except OSError as exc:
            self.unreadable(name, at, exc.strerror or type(exc).__name__, _path_hint(at))
        except ValueError:  # os.stat refuses a path with a NUL character in it
            self.unreadable(repr(name), at, "the path holds a NUL character", _path_hint(at))
        return None

    def too_big(self, exc: TooBig, label: str, at: Mark) -> None:
        if exc.size > MAX_BYTES:
            self.refuse(
                "ASM002",
                f"{label} is {exc.amount} bytes; manifest files are capped at "
                f"{MAX_BYTES:,} bytes each",
                at,
                "split it with `include:` into smaller files",
            )
            return
        self.refuse(
            "ASM706",
            f"{label} is {exc.amount} bytes, more than the {self.left:,} left of the "
            f"{self.total:,} a manifest may read with its includes and overlays",
            at,
            "keep shared fragments small, or split the app into several manifests",
        )

    def unreadable(self, name: str, at: Mark | None, reason: str, hint: str) -> None:
        where = at or Mark(name, 0, 0)
        self.refuse("ASM701" if at else "ASM001", f"cannot read {name}: {reason}", where, hint)

    def include(self, rel: str, target: FsPath, at: Mark) -> Document | None:
        """The fragment ``rel`` (resolved: ``target``) named at ``at``, if it may be read."""
        if not any(target.is_relative_to(root) for root in self.roots):
            folders = ", ".join(_display(r) for r in self.roots)
            self.refuse(
                "ASM703",
                f"include {rel!r} is outside the folders includes may come from ({folders})",
                at,
                "keep fragments under the manifest's folder (symlinks are followed); for "
                "a shared folder, name it on the command line with --root DIR",
            )
            return None
        if target.suffix.lower() not in (".yaml", ".yml"):
            self.refuse(
                "ASM705",
                f"include {rel!r} is not a .yaml or .yml file",
                at,
                "an include is a YAML fragment named *.yaml or *.yml; other files "
                "(.env, keys, system files) are never read",
            )
            return None
        return self.load(target, at, f"include {rel!r}")


def _path_hint(at: Mark | None) -> str:
    if at is None:
        return "check the path (relative to the current directory)"
    return "check the path (relative paths start at the including file's folder)"


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


def _overlay(manifest: Manifest, fs: FsPath, files: _Files) -> None:
    """Lay the overlay file ``fs`` over the manifest: maps merge key by key (so a section
    merges definition by definition, and a definition key by key), anything else (a
    scalar, a list) replaces what was there. Every value keeps the place it came from."""
    doc = files.load(fs, None)
    if doc is None:
        return
    if not _is_mapping(
        doc,
        "overlay",
        "an overlay holds the keys it changes: `resources: {db: {config: ...}}`",
        files.sink,
    ):
        return
    manifest.sources[doc.file] = doc.lines
    data = dict(doc.data)
    if "include" in data:
        at = doc.key_marks.get(("include",), Mark(doc.file, 1, 1))
        files.refuse(
            "ASM103",
            "an overlay may not hold `include`",
            at,
            "include the files from the manifest, or pass several --overlay",
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
        return str(_resolved(path).relative_to(FsPath.cwd()))
    except ValueError:
        return str(path)


def _adopt(manifest: Manifest, doc: Document, prefix: Path) -> None:
    manifest.sources[doc.file] = doc.lines
    for path, mark in doc.marks.items():
        manifest.marks.setdefault((*prefix, *path), mark)
    for path, mark in doc.key_marks.items():
        manifest.key_marks.setdefault((*prefix, *path), mark)


def _include(
    manifest: Manifest, doc: Document, here: FsPath, files: _Files, chain: list[FsPath]
) -> None:
    includes = doc.data.get("include")
    if not isinstance(includes, list):
        return
    for i, rel in enumerate(includes):
        if not isinstance(rel, str):
            continue  # the schema reports it
        at = doc.marks.get(("include", i), Mark(doc.file, 1, 1))
        target = _resolved(here.parent / rel)
        if target in chain:
            loop = " -> ".join(_display(p) for p in [*chain, target])
            files.refuse(
                "ASM702",
                f"include cycle: {loop}",
                at,
                "an included file must not include its includer",
            )
            continue
        fragment = files.include(rel, target, at)
        if fragment is None:
            continue
        if not _is_mapping(
            fragment, "included file", "an include holds sections such as `tasks:`", files.sink
        ):
            continue
        manifest.sources[fragment.file] = fragment.lines
        _merge_fragment(manifest, fragment, files.sink)
        _include(manifest, fragment, target, files, [*chain, target])


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
        self.texts: dict[Path, set[str]] = {}  # the environment's texts in the value here

    def run(self) -> None:
        data = self.m.data
        if isinstance(self.config, dict):
            for name in list(self.config):
                self.config_value(name, ("config", name))
        for key in list(data):
            if key not in ("include", "config"):
                data[key] = self.walk(data[key], (key,))
        self.classify()

    def classify(self) -> None:
        """The environment's texts that land under a secret-named key are secrets, where
        they are written or where a whole ``${config.X}`` puts them (each config value
        is looked at once, so this stays linear in the size of the manifest)."""
        for path, texts in self.texts.items():
            if secret_place(path):
                self.m.secret_values.update(texts)
        seen: set[Path] = set()
        for path, cpath in self.m.origins.items():
            if cpath in seen or not secret_place(path):
                continue
            seen.add(cpath)
            for leaf, _ in _leaves(_get(self.m.data, cpath), cpath):
                self.m.secret_values.update(self.texts.get(self.m.source(leaf), ()))

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
            value, from_env, cpath = self.resolve(match.group(1), path)
            secret = secret or from_env
            whole = match.start() == 0 and match.end() == len(text)
            self.m.interpolated.add(path)
            if whole:
                if cpath is not None:
                    self.m.origins[path] = cpath
                self.mark_secret(path, secret)
                value = value.value if isinstance(value, _Raw) else value
                self.url_secrets(value, secret)
                return value
            if isinstance(value, _Raw):  # inside text, the environment's text as it is
                value = value.text
            if cpath is not None:
                self.carry(cpath, path)
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
        self.url_secrets("".join(parts), secret)
        return "".join(parts)

    def carry(self, cpath: Path, path: Path) -> None:
        """A config value inside the text at ``path``: its env texts and the variable
        whose default it is are now part of this text too."""
        # Where the config value's own ${...} failed (reported there), the text it is in
        # is not what the user meant either: no schema error is reported for it too.
        if self.m.failed(cpath):
            self.m.mark_failed(path)
        texts = self.texts.get(self.m.source(cpath))
        if texts:
            self.texts.setdefault(path, set()).update(texts)
        variable = self.m.env_default(cpath)
        if variable is not None:
            self.m.env_defaults.setdefault(path, variable)

    def url_secrets(self, value: Any, from_env: bool) -> None:
        """The password (and credentials in the query) of a URL built with the
        environment's help are secrets; the rest of the URL is not."""
        if from_env and isinstance(value, str):
            self.m.secret_values.update(url_credentials(value))

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
            self.m.mark_secret(path)

    def resolve(self, ref: str, path: Path) -> tuple[Any, bool, Path | None]:
        """The value of ``ref``, whether it came from the environment, and the config
        path it names (``None`` for ``${env...}`` or when it failed)."""
        match = _REF.match(ref.strip())
        if match is None:
            self.error(
                "ASM303",
                path,
                f"cannot read ${{{ref}}}",
                "write ${config.NAME}, ${env.NAME} or ${env.NAME:-default}; $${ escapes",
            )
            return None, False, None
        if match.group("config"):
            return self.config_value(match.group("config"), path)
        return (*self.env_value(match, path), None)

    def env_value(self, match: re.Match[str], path: Path) -> tuple[Any, bool]:
        name = match.group("env")
        if name in self.env:
            raw = self.env[name]
            self.texts.setdefault(path, set()).add(raw)
            if runner.is_secret_key(name):
                self.m.secret_values.add(raw)
            return _Raw(scalar_from_text(raw), raw), True
        if match.group("default") is not None:
            raw = match.group("default")
            self.m.env_defaults[path] = name
            return _Raw(scalar_from_text(raw), raw), False
        self.error(
            "ASM301",
            path,
            f"environment variable {name} is not set",
            f"set {name}, or give a default: ${{env.{name}:-value}}",
        )
        return None, False

    def config_value(self, dotted: str, path: Path) -> tuple[Any, bool, Path | None]:
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
                return None, False, None
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
                return None, False, None
            self.resolving.append(dotted)
            resolved = self.walk(node, cpath)
            self.resolving.pop()
            self.done.add(dotted)
            _set(self.config, names, resolved)
            node = resolved
        return node, self.m.is_secret(cpath), cpath

    def error(self, code: str, path: Path, message: str, hint: str) -> None:
        self.m.mark_failed(path)
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


def secret_place(path: Path) -> bool:
    """Whether a key on ``path`` names a secret (``config.jwt_secret``,
    ``resources.store.config.admin.password``, ``tokens[0]``). A component's id names
    the component, not its values: a resource called ``tokens`` keeps its ``ttl`` plain."""
    keys = path[2:] if path[:1] and path[0] in SECTIONS else path[1:]
    return any(runner.is_secret_key(k) for k in keys)


#: Query parameters that carry credentials without a secret-named name (``key=``,
#: ``ssl_key=``, ``sig=``, ``X-Amz-Signature=``): the same rule as ``mask_url``.
_KEY_PARAM = re.compile(r"(?:^|[_-])(?:key|sig|signature)$", re.I)


def url_credentials(text: str) -> set[str]:
    """The password of the URL ``text`` and the values of its credential query
    parameters (``?password=``, ``?token=``, ``?key=``), as written and decoded.
    The user name and the host are not secrets (a ``DATABASE_URL`` without a password
    holds none)."""
    if "://" not in text:
        return set()
    try:
        parts = urlsplit(text.strip())
        password = parts.password
    except ValueError:  # a port that is not a number, a bad IPv6 host
        return set()
    found = {password, unquote(password)} if password else set()
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        name = unquote_plus(name)
        if runner.is_secret_key(name) or _KEY_PARAM.search(name):
            found.update((value, unquote_plus(value)))
    return {f for f in found if f}


def near(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to ``word``, if one is close enough (for "did you mean")."""
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def pointer(path: Path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


#: Secret-named keys that say where a secret is, not what it is (``token_field: token``).
_NAMES_A_PLACE = re.compile(r"[_-](?:field|header|name|param|file|path|url|ttl|env)$", re.I)


def development_secrets(manifest: Manifest) -> list[Diagnostic]:
    """A warning (``ASM805``) for each secret-named key of a component's ``config`` that
    holds text the environment did not give: a literal, or an ``${env.X:-default}``
    whose variable is unset. The value itself is never in the message."""
    found = []
    for owner, path in _component_configs(manifest):
        for at, value in _leaves(_get(manifest.data, path), path):
            key = next((k for k in reversed(at[len(path) :]) if isinstance(k, str)), "")
            if (
                isinstance(value, str)
                and value
                and runner.is_secret_key(key)
                and not _NAMES_A_PLACE.search(key)
                and not manifest.is_secret(at)
            ):
                found.append(_development_secret(manifest, owner, path, at))
    return found


def _development_secret(manifest: Manifest, owner: str, config: Path, at: Path) -> Diagnostic:
    name = _dotted(at[len(config) :])
    mark = manifest.place(manifest.source(at))
    where = f"{mark.file}:{mark.line}:{mark.col}"
    variable = manifest.env_default(at)
    if variable is not None:
        message = f"{owner}: config `{name}` is a development default ({where})"
        hint = f"set {variable} before deploying"
    else:
        message = f"{owner}: config `{name}` is written in the manifest ({where})"
        hint = "read it from the environment (${env.NAME}) before deploying"
    return Diagnostic(
        "ASM805", message, mark.file, mark.line, mark.col, pointer(at), hint, "warning"
    )


def _component_configs(manifest: Manifest) -> Iterator[tuple[str, Path]]:
    """``(who, path of its config)`` for each component and inline middleware entry."""
    for section in ("resources", "middleware", "tasks"):
        for id, body, path in manifest.components(section):
            if section != "tasks" and isinstance(body.get("config"), dict):
                yield f"{KIND_OF_SECTION[section]} {id!r}", (*path, "config")
            entries = body.get("middleware")
            for i, entry in enumerate(entries if isinstance(entries, list) else ()):
                if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
                    kind = KIND_OF_SECTION[section]
                    yield (
                        f"middleware {entry.get('use')!r} of {kind} {id!r}",
                        (*path, "middleware", i, "config"),
                    )


def _leaves(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if not isinstance(value, dict | list):
        yield path, value
    for key, child in _children(value):
        yield from _leaves(child, (*path, key))


def _children(value: Any) -> Iterable[tuple[str | int, Any]]:
    if isinstance(value, dict):
        return value.items()
    return enumerate(value) if isinstance(value, list) else ()


def _get(data: Any, path: Path) -> Any:
    """The value at ``path`` in ``data``; ``None`` where the path does not lead."""
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
