"""The public surface is a decision: a new public name must be added here on purpose."""

from __future__ import annotations

import ast
from pathlib import Path

import runner
import runner.errors
import runner.testing

ROOT = Path(__file__).resolve().parents[1]


def test_runner_all_is_pinned_and_sorted() -> None:
    assert runner.__all__ == sorted(runner.__all__, key=str.casefold) or runner.__all__ == sorted(
        runner.__all__
    )
    assert set(runner.__all__) == {
        "AsyncContext",
        "Definition",
        "Event",
        "EventEmission",
        "Hook",
        "MiddlewareUse",
        "Plan",
        "Provision",
        "Ref",
        "Request",
        "Resource",
        "ResourceCall",
        "ResourceMiddleware",
        "Runtime",
        "Schema",
        "SecretValues",
        "Store",
        "Tag",
        "TagUse",
        "Tagged",
        "Task",
        "TaskCall",
        "TaskMiddleware",
        "abandoned_threads",
        "boundary_errors",
        "check_boundary",
        "current_request",
        "current_resource",
        "current_runtime",
        "errors",
        "find_cycles",
        "is_secret_key",
        "main",
        "optional",
        "plan",
        "report",
        "run",
        "serve",
        "signature_problem",
        "testing",
        "waves",
    }
    for name in runner.__all__:
        assert hasattr(runner, name), name


def test_every_error_is_exported_with_a_code_and_documented_in_the_docstring() -> None:
    doc = runner.errors.__doc__ or ""
    for name in runner.errors.__all__:
        cls = getattr(runner.errors, name)
        if name == "FieldError":
            continue
        assert issubclass(cls, runner.errors.RunnerError), name
        assert name in doc, f"{name} is missing from the hierarchy in errors.py's docstring"
        assert cls.code.startswith("runner."), name
    codes = [getattr(runner.errors, n).code for n in runner.errors.__all__ if n != "FieldError"]
    assert len(codes) == len(set(codes)), "codes are unique"


def test_testing_exports() -> None:
    assert runner.testing.__all__ == ["replace", "run_test", "stub_resource", "stub_task"]


def test_runner_imports_neither_the_assembler_nor_plugins() -> None:
    for path in (ROOT / "runner").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in {"assembler", "plugins", "ruamel", "pluggy", "click"}, (
                    f"{path.name} imports {name}"
                )
