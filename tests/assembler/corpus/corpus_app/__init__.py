"""Tiny callables for the broken-manifest corpus (tests/assembler/corpus)."""
