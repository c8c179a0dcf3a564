"""The registry of diagnostic codes (``assembler._codes``) against the code and the docs:
docs/manifest.md §16 documents exactly the registry's codes, with the same meaning, and
every ``ASMnnn`` the assembler writes is registered."""

from __future__ import annotations

import re
from pathlib import Path

from assembler._codes import CODES, meaning

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_table_is_the_registry() -> None:
    doc = (ROOT / "docs" / "manifest.md").read_text()
    table = dict(re.findall(r"^\| `(ASM\d{3})` \| (.+?) \| .+ \|$", doc, flags=re.M))
    assert table == dict(CODES)


def test_every_code_the_assembler_writes_is_registered() -> None:
    written = {
        code
        for path in (ROOT / "assembler").glob("*.py")
        if path.name != "_codes.py"
        for code in re.findall(r"\bASM\d{3}\b", path.read_text())
    }
    assert written, "no code found: the pattern is wrong"
    assert written <= set(CODES), sorted(written - set(CODES))


def test_a_plugin_code_has_no_meaning_here() -> None:
    assert meaning("ASM101").startswith("an unknown key")
    assert meaning("demo/check") == ""
