"""The shape of the code: function lengths, nested functions, ``Any`` per 1,000 lines.

``python -m bench.shape [--json] [PACKAGE ...]`` (default: ``runner assembler plugins``).
For each package: the number of functions, their length in lines (median, p90, max, and
the longest five by name), the share of functions defined inside another function, and
``Any`` (the name, as written in annotations or code) per 1,000 non-blank lines. Tests
and ``__pycache__`` are not counted.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_ANY = re.compile(r"\bAny\b")


@dataclass
class Shape:
    package: str
    lines: int = 0
    functions: int = 0
    nested: int = 0
    any_names: int = 0
    lengths: list[int] = field(default_factory=list, repr=False)
    longest: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        ordered = sorted(self.lengths)
        p90 = ordered[int(0.9 * (len(ordered) - 1))] if ordered else 0
        return {
            "package": self.package,
            "lines": self.lines,
            "functions": self.functions,
            "length_median": statistics.median(ordered) if ordered else 0,
            "length_p90": p90,
            "length_max": ordered[-1] if ordered else 0,
            "nested_share": round(self.nested / self.functions, 3) if self.functions else 0,
            "any_per_1000_lines": round(1000 * self.any_names / self.lines, 1) if self.lines else 0,
            "longest": [f"{n} lines: {name}" for n, name in sorted(self.longest)[::-1][:5]],
        }


def _walk(tree: ast.AST, path: str, shape: Shape, inside: bool = False) -> None:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            shape.functions += 1
            shape.nested += inside
            shape.lengths.append(length)
            shape.longest.append((length, f"{path}:{node.lineno} {node.name}"))
            _walk(node, path, shape, True)
        else:
            _walk(node, path, shape, inside)


def measure(package: str) -> Shape:
    shape = Shape(package)
    for file in sorted((ROOT / package).rglob("*.py")):
        if "__pycache__" in file.parts or "tests" in file.parts:
            continue
        text = file.read_text()
        shape.lines += sum(1 for line in text.splitlines() if line.strip())
        shape.any_names += len(_ANY.findall(text))
        _walk(ast.parse(text), str(file.relative_to(ROOT)), shape)
    return shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=["runner", "assembler", "plugins"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [measure(p).summary() for p in args.packages]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(
            f"{r['package']}: {r['lines']:,} lines, {r['functions']} functions; length "
            f"median {r['length_median']}, p90 {r['length_p90']}, max {r['length_max']}; "
            f"nested {100 * float(str(r['nested_share'])):.0f} %; "
            f"Any {r['any_per_1000_lines']} per 1,000 lines"
        )
        for line in r["longest"]:  # type: ignore[attr-defined]
            print(f"    {line}")


if __name__ == "__main__":
    main()
