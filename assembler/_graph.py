"""``assemble graph``: the compiled app as Mermaid or DOT (ids only, never values)."""

from __future__ import annotations

import runner

SHAPES = {  # kind -> (mermaid open, mermaid close, DOT shape)
    "resource": ("[(", ")]", "cylinder"),
    "task": ("[", "]", "box"),
    "event": ("{{", "}}", "hexagon"),
    "hook": ("([", "])", "oval"),
    "task middleware": ("[/", "/]", "parallelogram"),
    "resource middleware": ("[/", "/]", "parallelogram"),
    "async context": ("((", "))", "circle"),
    "tag": (">", "]", "note"),
}


def edges(store: runner.Store) -> list[tuple[str, str, str]]:
    """``(from, to, label)``: dependencies, middleware, hooks listening to events."""
    out: list[tuple[str, str, str]] = []
    for d in store:
        for key, ref in getattr(d, "dependencies", {}).items():
            if ref.id in store:
                out.append((d.id, ref.id, key))
        for use in getattr(d, "middleware", ()):
            out.append((d.id, use.id, "middleware"))
        if isinstance(d, runner.Hook):
            for event in d.events:
                if event != "*":
                    out.append((event, d.id, "on"))
    return out


def render_graph(store: runner.Store, fmt: str) -> str:
    nodes = [d for d in store if d.id != store.root.id and not isinstance(d, runner.Tag)]
    names = {d.id: f"n{i}" for i, d in enumerate(nodes)}
    lines = []
    if fmt == "dot":
        lines.append(f'digraph "{store.root.id}" {{')
        lines.append("  rankdir=LR;")
        for d in nodes:
            shape = SHAPES.get(d.kind, ("[", "]", "box"))[2]
            lines.append(f'  {names[d.id]} [label="{d.id}\\n({d.kind})", shape={shape}];')
        for a, b, label in edges(store):
            if a in names and b in names:
                lines.append(f'  {names[a]} -> {names[b]} [label="{label}"];')
        lines.append("}")
        return "\n".join(lines)
    lines.append("graph LR")
    for d in nodes:
        open_, close, _ = SHAPES.get(d.kind, ("[", "]", "box"))
        lines.append(f'  {names[d.id]}{open_}"{d.id}"{close}')
    for a, b, label in edges(store):
        if a in names and b in names:
            arrow = "-.->" if label in ("middleware", "on") else "-->"
            lines.append(f"  {names[a]} {arrow}|{label}| {names[b]}")
    return "\n".join(lines)
