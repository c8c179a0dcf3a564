"""Import paths (``module:attribute``): checked as strings against the allow-list first."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._manifest import near

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class ImportProblem:
    code: str
    message: str
    hint: str


class Importer:
    """Resolves import paths for one manifest: its python_path, plugins and allow_imports."""

    def __init__(self, folders: Sequence[Path], packages: Iterable[str], allow: Sequence[str]):
        self.folders = [f.resolve() for f in folders]
        self.packages = set(packages)
        self.allow = list(allow)
        self.cache: dict[str, Any] = {}

    def allowed(self, module: str) -> bool:
        """Checked on the string alone: nothing is imported to decide."""
        top = module.split(".")[0]
        if top in self.packages:
            return True
        if any(module == p or module.startswith(p + ".") for p in self.allow):
            return True
        return any((f / f"{top}.py").is_file() or (f / top).is_dir() for f in self.folders)

    def check(self, path: str) -> None:
        """Check ``path`` as text (its form, the allow-list) without importing anything;
        raises :class:`ImportProblem` (as an exception) when it fails."""
        if not IMPORT_PATH.match(path):
            raise _Problem(
                "ASM401",
                f"{path!r} is not an import path",
                "write `package.module:attribute`, e.g. `my_app.tasks:create_user`",
            )
        module_name = path.split(":")[0]
        if not self.allowed(module_name):
            raise _Problem(
                "ASM402",
                f"module {module_name!r} is outside the allowed imports",
                "import paths may name modules under python_path, installed plugins' packages "
                f"or `allow_imports`; add `allow_imports: [{module_name.split('.')[0]}]` "
                "if you trust it",
            )

    def resolve(self, path: str) -> Any:
        """The object at ``path``; raises :class:`ImportProblem` (as an exception) otherwise."""
        if path in self.cache:
            return self.cache[path]
        self.check(path)
        module_name, attr = path.split(":")
        module = self._import(module_name)
        obj: Any = module
        walked = module_name
        for part in attr.split("."):
            if not hasattr(obj, part):
                names = [n for n in dir(obj) if not n.startswith("_")]
                guess = near(part, names)
                raise _Problem(
                    "ASM404",
                    f"{walked!r} has no attribute {part!r}",
                    f"did you mean {guess!r}?" if guess else f"define {part} in {walked}",
                )
            obj = getattr(obj, part)
            walked += ("." if walked != module_name else ":") + part
            self._check_origin(obj, path)
        if not callable(obj):
            raise _Problem(
                "ASM405",
                f"{path} is {_article(type(obj).__name__)}, not a callable",
                "point at a function (or a class or object with __call__)",
            )
        self.cache[path] = obj
        return obj

    def _import(self, name: str) -> types.ModuleType:
        for folder in reversed(self.folders):
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            missing = exc.name or name
            hint = "check the spelling and python_path"
            if missing != name and not name.startswith(missing + "."):
                hint = f"{name} imports {missing!r}, which is not installed"
            raise _Problem("ASM403", f"cannot import {name!r}: {exc}", hint) from None
        except Exception as exc:
            raise _Problem(
                "ASM403",
                f"importing {name!r} raised {type(exc).__name__}: {exc}",
                "the module's top-level code failed; run it with python to see why",
            ) from None

    def _check_origin(self, obj: Any, path: str) -> None:
        """Walking attributes must not leave the allowed modules (``app:os.system``)."""
        if inspect.ismodule(obj):
            origin = obj.__name__
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.isclass(obj):
            origin = getattr(obj, "__module__", None) or ""
        else:
            return
        if origin and not self.allowed(origin):
            raise _Problem(
                "ASM402",
                f"{path} resolves to {origin}.{getattr(obj, '__qualname__', '')}".rstrip(".")
                + ", outside the allowed imports",
                "name it where it is defined, and allow that module: "
                f"`allow_imports: [{origin.split('.')[0]}]`",
            )


class _Problem(Exception):
    def __init__(self, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.problem = ImportProblem(code, message, hint)


ImportFailure = _Problem


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
