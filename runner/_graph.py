"""Graph algorithms over ids: cycles with their path, topological waves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

Adjacency = Mapping[str, Iterable[str]]


def find_cycles(edges: Adjacency) -> list[list[str]]:
    """Every elementary cycle found by one depth-first pass, each as ``[a, b, ..., a]``.

    Each strongly connected tangle is reported at least once; a cycle is not reported
    twice under a rotation. Iterative, so deep graphs do not hit the recursion limit.
    """
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in edges:
        if start in state:
            continue
        path: list[str] = [start]
        stack = [iter(edges.get(start, ()))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            mark = state.get(nxt)
            if mark == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif mark is None and nxt in edges:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(edges.get(nxt, ())))
    return cycles


def waves(nodes: Iterable[str], needs: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """Kahn's algorithm by levels: each wave needs only ids of earlier waves.

    ``needs`` must describe an acyclic graph over ``nodes`` (check with
    :func:`find_cycles` first); ids it names outside ``nodes`` are ignored.
    """
    order = list(nodes)
    members = set(order)
    pending: dict[str, int] = {}
    dependants: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        deps = {d for d in needs(n) if d in members and d != n}
        pending[n] = len(deps)
        for d in deps:
            dependants[d].append(n)
    wave = [n for n in order if pending[n] == 0]
    out: list[list[str]] = []
    while wave:
        out.append(wave)
        nxt = []
        for n in wave:
            for m in dependants[n]:
                pending[m] -= 1
                if pending[m] == 0:
                    nxt.append(m)
        wave = nxt
    return out
