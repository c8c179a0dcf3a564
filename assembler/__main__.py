"""``python -m assembler`` is the ``assemble`` command."""

from ._cli import main

main()
