"""The fast signature check never accepts a call that inspect.signature would refuse."""

from __future__ import annotations

import inspect
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runner._plan import _fits

NAMES = ["input", "config", "db", "cache", "log"]


@st.composite
def functions(draw: st.DrawFn) -> Any:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    split = draw(st.integers(0, len(names)))
    posonly = draw(st.integers(0, split))
    params: list[str] = []
    for i, name in enumerate(names):
        default = draw(st.booleans())
        if i == split:
            params.append("*args" if draw(st.booleans()) else "*")
        params.append(f"{name}=None" if default else name)
        if posonly and i == posonly - 1:
            params.append("/")
    if split == len(names) and draw(st.booleans()):
        params.append("*args")
    if draw(st.booleans()):
        params.append("**deps")
    src = f"def f({', '.join(params)}): pass"
    scope: dict[str, Any] = {}
    try:
        exec(src, scope)
    except SyntaxError:  # e.g. a required parameter after a defaulted one
        return None
    return scope["f"]


@given(functions(), st.integers(0, 2), st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
# No per-example deadline (Hypothesis' default is 200 ms): an example takes microseconds,
# and one that a stalled process (a full GC late in a CI run) made slow fails the test as
# "Unreliable test timings" though it checks nothing about time.
@settings(max_examples=600, deadline=None)
def test_fits_agrees_with_inspect_when_it_says_yes(fn: Any, npos: int, keys: list[str]) -> None:
    if fn is None:
        return
    if _fits(fn, npos, keys):
        inspect.signature(fn).bind(*range(npos), **dict.fromkeys(keys))


def test_fits_accepts_the_common_shapes() -> None:
    async def task(input: Any, db: Any, cache: Any = None) -> None: ...
    def hook(event: Any, **deps: Any) -> None: ...

    assert _fits(task, 1, ["db"]) and _fits(task, 1, ["db", "cache"])
    assert not _fits(task, 1, []) and not _fits(task, 1, ["db", "other"])
    assert _fits(hook, 1, ["anything"])
    assert not _fits(print, 1, [])
