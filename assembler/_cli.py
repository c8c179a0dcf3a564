from __future__ import annotations

import sys


def main() -> int:
    """The ``assemble`` command (placeholder until the assembler lands)."""
    print(
        "error[assemble.not_implemented]: the manifest assembler is not built yet\n"
        "  hint: the runtime (`import runner`) works today; `assemble run` arrives with "
        "the assembler",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
