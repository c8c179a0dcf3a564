"""The assembler: manifest loading, validation, plugins, compilation and the CLI.

Until the assembler lands (issue 3) this package only carries the CLI entry point,
which says so instead of pretending to run manifests.
"""

__all__: list[str] = []
