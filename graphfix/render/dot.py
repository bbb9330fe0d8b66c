"""Graphviz pictures of a repair (``rewrite --dot FILE``).

For each repaired term, two clusters side by side — *before* and *after* —
holding the changed region (added, removed, rewired and changed nodes, see
:mod:`graphfix.render.diff`) plus one ring of unchanged neighbours (the producers
and consumers of the region's nodes, drawn grey):

* new nodes are filled green; nodes changed in place (a term replaced by its
  guard under the same name) are filled yellow;
* removed nodes are dashed and grey (in *before*);
* rewired edges are blue and bold in *after*; the edges they replaced are red
  and dashed in *before*;
* control edges are dotted.

Regions are the connected groups of changed nodes; a group belongs to the
findings whose node or new nodes it contains (one picture may cover several
findings when their changes touch).  Changes no finding claims (device
placements cleared with ``--clear-devices`` are not structural and are left
out) get a picture of their own.  Everything is ordered by graph order, so the
DOT text is the same on every run.  ``FILE.svg`` is rendered with Graphviz
``dot`` when it is installed (:func:`check_target` says so up front).
"""
from __future__ import annotations

import os
import shutil
import subprocess

from graphfix.core import io
from graphfix.core.errors import GraphfixError
from graphfix.core.ir import parse_input
from graphfix.render.diff import compare

ADDED_FILL = "#c8f7c5"
CHANGED_FILL = "#fff2a8"
REWIRED_COLOR = "#1f5fbf"
OLD_EDGE_COLOR = "#c0392b"
RING_COLOR = "#9a9a9a"
DOT_TIMEOUT = 120


def _gd(x):
    return getattr(x, "graph_def", x)


def _q(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _View:
    """One GraphDef: nodes by name, graph positions, inputs (parsed on demand)
    and the consumers of the ``watch``ed nodes (one pass; large graphs stay cheap)."""

    def __init__(self, gd, watch=()):
        nodes, pos = {}, {}
        consumers: dict[str, list[str]] = {w: [] for w in watch}
        for i, n in enumerate(gd.node):
            name = n.name
            nodes[name] = n
            pos[name] = i
            if consumers:
                for s in n.input:
                    src = s[1:] if s[:1] == "^" else s.partition(":")[0]  # node names have no ':'
                    if src in consumers:
                        consumers[src].append(name)
        self.nodes, self.pos, self.consumers = nodes, pos, consumers
        self._inputs: dict[str, list[tuple[str, int, bool]]] = {}

    def inputs(self, name: str) -> list[tuple[str, int, bool]]:
        if name not in self._inputs:
            self._inputs[name] = [parse_input(s) for s in self.nodes[name].input]
        return self._inputs[name]

    def ring(self, region: set[str]) -> set[str]:
        """Producers and consumers of ``region`` (which must be watched) outside it."""
        out = set()
        for name in region:
            if name not in self.nodes:
                continue
            out.update(src for src, _, _ in self.inputs(name) if src in self.nodes)
            out.update(self.consumers.get(name, ()))
        return out - region


def _watched(ch) -> set[str]:
    return set(ch.added) | set(ch.removed) | set(ch.rewired) | set(ch.changed)


def _structural_change(a, b) -> bool:
    x, y = type(a)(), type(b)()
    x.CopyFrom(a)
    y.CopyFrom(b)
    for n in (x, y):
        n.device = ""
        if "_class" in n.attr:
            del n.attr["_class"]
    return x != y


def regions(old, new, findings, _ctx=None) -> list[tuple[list, set[str]]]:
    """``[(findings, changed node names)]``: connected groups of changed nodes
    with the fixed findings that claim them (by their node or new nodes) —
    claimed groups in finding order, then unclaimed ones in graph order."""
    old_gd, new_gd = _gd(old), _gd(new)
    if _ctx is None:
        ch = compare(old_gd, new_gd)
        watch = _watched(ch)
        ov, nv = _View(old_gd, watch), _View(new_gd, watch)
    else:
        ch, ov, nv = _ctx
    changed = set(ch.added) | set(ch.removed) | set(ch.rewired)
    changed |= {n for n in ch.changed if _structural_change(ov.nodes[n], nv.nodes[n])}
    fixed = [f for f in findings if f.fixed]
    parent: dict = {n: n for n in changed}
    parent.update({i: i for i in range(len(fixed))})  # findings are ints, nodes are strings

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    for view in (ov, nv):
        for name in sorted(changed):
            if name in view.nodes:
                for src, _, _ in view.inputs(name):
                    if src in changed:
                        union(name, src)
    for i, f in enumerate(fixed):
        for n in (f.node, *f.new_nodes):
            if n in changed:
                union(i, n)
    groups: dict = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)

    def pos(n):
        return nv.pos[n] if n in nv.pos else ov.pos.get(n, 0)

    pictures = []
    for members in groups.values():
        fs = sorted(x for x in members if isinstance(x, int))
        nodes = {x for x in members if isinstance(x, str)}
        if nodes:
            pictures.append(([fixed[i] for i in fs], nodes, (0, fs[0]) if fs else (1, min(map(pos, nodes)))))
    pictures.sort(key=lambda p: p[2])
    return [(fs, nodes) for fs, nodes, _ in pictures]


def _cluster(lines, idx: int, side: str, title: str, view: _View, other: _View, region: set[str],
             ch_kind: dict[str, str]):
    present = {n for n in region if n in view.nodes}
    ring = view.ring(present)
    shown = sorted(present | ring, key=view.pos.__getitem__)
    ids = {n: f"{idx}{side[0]}:{n}" for n in shown}
    lines.append(f"  subgraph {_q(f'cluster_{idx}_{side}')} {{")
    lines.append(f"    label={_q(title)};")
    lines.append("    style=rounded; color=\"#555555\"; fontname=\"Helvetica\";")
    if not shown:
        lines.append(f"    {_q(f'{idx}{side[0]}:(empty)')} [label=\"(nothing)\", shape=plaintext];")
    for n in shown:
        node = view.nodes[n]
        attrs = {"label": f"{n}\\n{node.op}"}
        kind = ch_kind.get(n)
        if n in ring:
            attrs.update(color=RING_COLOR, fontcolor="#555555")
        elif kind == "added":
            attrs.update(style="rounded,filled", fillcolor=ADDED_FILL)
        elif kind == "removed":
            attrs.update(style="rounded,dashed", color=RING_COLOR, fontcolor=RING_COLOR)
        elif kind == "changed":
            attrs.update(style="rounded,filled", fillcolor=CHANGED_FILL)
        elif kind == "rewired":
            attrs.update(color=REWIRED_COLOR, penwidth="2")
        body = ", ".join(f"{k}={_q(v) if k != 'label' else chr(34) + _esc_label(v) + chr(34)}"
                         for k, v in attrs.items())
        lines.append(f"    {_q(ids[n])} [{body}];")
    for n in shown:
        other_inputs = set(other.inputs(n)) if n in other.nodes else None
        for src, out, ctrl in view.inputs(n):
            if src not in ids:
                continue
            attrs = {}
            if ctrl:
                attrs["style"] = "dotted"
            elif out:
                attrs["label"] = str(out)
            moved = other_inputs is not None and (src, out, ctrl) not in other_inputs
            if moved and side == "after":
                attrs.update(color=REWIRED_COLOR, penwidth="2")
            elif moved and side == "before":
                attrs.update(color=OLD_EDGE_COLOR, style="dashed")
            elif ch_kind.get(n) == "removed" or ch_kind.get(src) == "removed":
                attrs.update(color=RING_COLOR, style="dashed")
            body = ", ".join(f"{k}={_q(v)}" for k, v in attrs.items())
            lines.append(f"    {_q(ids[src])} -> {_q(ids[n])}{f' [{body}]' if body else ''};")
    lines.append("  }")


def _esc_label(s: str) -> str:
    # The label keeps its \n escape; quotes and backslashes elsewhere are escaped.
    return s.replace("\\n", "\0").replace("\\", "\\\\").replace('"', '\\"').replace("\0", "\\n")


def render_dot(old, new, findings=(), title: str = "graphfix") -> str:
    """The DOT text: before/after clusters for each repaired region."""
    old_gd, new_gd = _gd(old), _gd(new)
    ch = compare(old_gd, new_gd) if old_gd is not new_gd else None
    pictures, kinds = [], {}
    if ch is not None and not ch.empty:
        watch = _watched(ch)
        ov, nv = _View(old_gd, watch), _View(new_gd, watch)
        for k in ("added", "removed", "rewired", "changed"):
            for n in getattr(ch, k):
                kinds[n] = k
        pictures = regions(old_gd, new_gd, findings, _ctx=(ch, ov, nv))
    legend = ("new nodes filled green, changed yellow, removed dashed grey; "
              "rewired edges blue (the edges they replaced red, dashed)")
    lines = ["digraph graphfix {",
             f"  label={_q(title + chr(10) + legend)};",
             "  labelloc=t; fontname=\"Helvetica\"; rankdir=TB; newrank=true; compound=true;",
             "  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];",
             "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#333333\"];"]
    if not pictures:
        lines.append('  "no change" [shape=plaintext, label="no repaired term: the graph is unchanged"];')
    for i, (fs, region) in enumerate(pictures, 1):
        name = ", ".join(f"{f.code} {f.node}" + (f" ({f.guard})" if f.guard else "") for f in fs) or "other changes"
        _cluster(lines, i, "before", f"{name} — before", ov, nv, region, kinds)
        _cluster(lines, i, "after", f"{name} — after", nv, ov, region, kinds)
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_program() -> str | None:
    """Path of Graphviz ``dot``, or None."""
    return shutil.which("dot")


def check_target(path: str) -> None:
    """Fail now (before any work) if ``path`` cannot be written or, for
    ``.svg``, if Graphviz is not installed."""
    io.check_writable(path)
    if _wants_svg(path) and dot_program() is None:
        raise GraphfixError(f"{path}: rendering SVG needs Graphviz `dot`, which is not installed "
                            "(install graphviz, or give a .dot file)")


def _wants_svg(path: str) -> bool:
    return os.path.splitext(str(path))[1].lower() == ".svg"


def write(old, new, findings, path: str, title: str = "graphfix") -> None:
    """Write the DOT picture to ``path`` (SVG rendered by Graphviz for ``.svg``), atomically."""
    text = render_dot(old, new, findings, title)
    data = text.encode("utf-8")
    if _wants_svg(path):
        prog = dot_program()
        if prog is None:
            check_target(path)
        try:
            res = subprocess.run([prog, "-Tsvg"], input=data, capture_output=True, timeout=DOT_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise GraphfixError(f"{path}: Graphviz dot failed: {e}") from None
        if res.returncode != 0:
            msg = res.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GraphfixError(f"{path}: Graphviz dot failed: {msg[0] if msg else res.returncode}")
        data = res.stdout
    io.atomic_write(str(path), data)
