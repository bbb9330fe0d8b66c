"""A readable, deterministic text diff of a graph change (``rewrite --diff``).

Original and fixed GraphDefs are compared node by node, by name.  Each node
that differs is printed as its own small unified diff of its protobuf text
(``node { … }``), with the file and node name in the ``---``/``+++`` headers:

* an **added** node diffs against ``/dev/null`` (all ``+``),
* a **removed** node against ``/dev/null`` (all ``-``),
* a **rewired** node (only its inputs changed) and a **changed** node (op,
  attrs or device changed — e.g. a term replaced by its guard under the same
  name) show the changed lines with 3 lines of context.

Nodes come in graph order: the fixed graph's order, with each removed node
placed where it stood among the original's nodes.  Graph-level fields
(``versions``, ``library``) get one more block if they differ.  The text
depends only on the two graphs and the labels, so it is the same on every run.
"""
from __future__ import annotations

import dataclasses
import difflib

from google.protobuf import text_format


@dataclasses.dataclass
class Changes:
    """Node names by kind of change, each list in graph order."""

    added: list[str]
    removed: list[str]
    rewired: list[str]
    changed: list[str]
    order: list[tuple[str, str]]  # (kind, name) in display order, unchanged nodes left out

    @property
    def empty(self) -> bool:
        return not self.order

    def counts(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in (("added", self.added), ("removed", self.removed),
                                               ("rewired", self.rewired), ("changed", self.changed)) if v]
        return ", ".join(parts) if parts else "no change"


def _graph_def(x):
    return getattr(x, "graph_def", x)


def _without_inputs(node):
    n = type(node)()
    n.CopyFrom(node)
    del n.input[:]
    return n


def compare(old, new) -> Changes:
    """Classify the difference between two GraphDefs (or Models) by node name."""
    old_nodes = _graph_def(old).node
    new_nodes = _graph_def(new).node
    old_by = {n.name: n for n in old_nodes}
    new_by = {n.name: n for n in new_nodes}
    old_pos = {n.name: i for i, n in enumerate(old_nodes)}
    added, removed, rewired, changed, order = [], [], [], [], []
    removed_all = [n.name for n in old_nodes if n.name not in new_by]
    r = 0  # next removed node (in original order) not yet placed

    def flush(upto: int):
        nonlocal r
        while r < len(removed_all) and old_pos[removed_all[r]] < upto:
            removed.append(removed_all[r])
            order.append(("removed", removed_all[r]))
            r += 1

    for n in new_nodes:
        o = old_by.get(n.name)
        if o is None:
            added.append(n.name)
            order.append(("added", n.name))
            continue
        flush(old_pos[n.name])
        if o == n:
            continue
        if list(o.input) != list(n.input) and _without_inputs(o) == _without_inputs(n):
            rewired.append(n.name)
            order.append(("rewired", n.name))
        else:
            changed.append(n.name)
            order.append(("changed", n.name))
    flush(len(old_nodes) + 1)
    return Changes(added, removed, rewired, changed, order)


def node_lines(node) -> list[str]:
    """A NodeDef as ``node { … }`` protobuf text lines (map fields sorted)."""
    body = text_format.MessageToString(node, as_utf8=True)
    return ["node {"] + ["  " + line for line in body.splitlines()] + ["}"]


def _graph_fields(gd) -> list[str]:
    rest = type(gd)()
    rest.CopyFrom(gd)
    del rest.node[:]
    return text_format.MessageToString(rest, as_utf8=True).splitlines()


def graph_diff(old, new, old_label: str = "a", new_label: str = "b", context: int = 3) -> str:
    """The unified-style diff text of ``old`` -> ``new``; ``""`` when equal."""
    old_gd, new_gd = _graph_def(old), _graph_def(new)
    if old_gd is new_gd:
        return ""
    changes = compare(old_gd, new_gd)
    old_by = {n.name: n for n in old_gd.node}
    new_by = {n.name: n for n in new_gd.node}
    out = []
    for kind, name in changes.order:
        a = node_lines(old_by[name]) if kind != "added" else []
        b = node_lines(new_by[name]) if kind != "removed" else []
        what = kind
        if kind == "changed" and old_by[name].op != new_by[name].op:
            what = f"changed: {old_by[name].op} -> {new_by[name].op}"
        elif kind == "rewired":
            what = _rewired_summary(old_by[name], new_by[name])
        out.append(f"# {name} ({what})")
        out.extend(difflib.unified_diff(
            a, b,
            fromfile="/dev/null" if kind == "added" else f"{old_label}:{name}",
            tofile="/dev/null" if kind == "removed" else f"{new_label}:{name}",
            n=context, lineterm=""))
    ga, gb = _graph_fields(old_gd), _graph_fields(new_gd)
    if ga != gb:
        out.append("# graph fields (versions, library)")
        out.extend(difflib.unified_diff(ga, gb, fromfile=f"{old_label}:<graph>", tofile=f"{new_label}:<graph>",
                                        n=context, lineterm=""))
    if not out:
        return ""
    head = f"graphfix diff {old_label} -> {new_label}: {changes.counts()}"
    return "\n".join([head] + out) + "\n"


def _rewired_summary(old, new) -> str:
    """``rewired: input 0 a -> b`` (positions that changed, at most three listed)."""
    diffs = []
    for i in range(max(len(old.input), len(new.input))):
        a = old.input[i] if i < len(old.input) else None
        b = new.input[i] if i < len(new.input) else None
        if a != b:
            diffs.append((i, a, b))
    parts = []
    for i, a, b in diffs[:3]:
        if a is None:
            parts.append(f"input {i} + {b}")
        elif b is None:
            parts.append(f"input {i} - {a}")
        else:
            parts.append(f"input {i} {a} -> {b}")
    if len(diffs) > 3:
        parts.append(f"… {len(diffs) - 3} more")
    return "rewired: " + "; ".join(parts)



def fixed_label(input_label: str, output_label: str | None) -> str:
    """The fixed side's label: OUT when given, else ``IN (fixed)`` (never ``IN -> IN``)."""
    return output_label if output_label else f"{input_label} (fixed)"


def diff_text(old, new, input_label: str, output_label: str | None = None, style: str = "full",
              findings=()) -> str:
    """``rewrite --diff`` output: the full per-node diff (``style="full"``) or
    the per-finding summary (``"stat"``); ``""`` when the graph is unchanged."""
    new_label = fixed_label(input_label, output_label)
    if style == "stat":
        return diff_stat(old, new, input_label, new_label, findings)
    return graph_diff(old, new, input_label, new_label)


def _owner(name: str, findings) -> int | None:
    """The index of the finding a changed node belongs to: one of its new
    nodes, its term, or the term's gradient scope (``…/<term>_grad/…``)."""
    for i, f in enumerate(findings):
        if name == f.node or name in f.new_nodes or name.startswith(f"{f.node}/graphfix/"):
            return i
    for i, f in enumerate(findings):
        if f"{f.node}_grad/" in name or name.endswith(f"{f.node}_grad"):
            return i
    return None


def diff_stat(old, new, old_label: str = "a", new_label: str = "b", findings=()) -> str:
    """A summary of ``old`` -> ``new``: per finding, how many nodes were added,
    removed, rewired and changed; nodes no finding owns (a rewired consumer of
    a new gradient, say) are counted on the finding whose nodes they now read."""
    old_gd, new_gd = _graph_def(old), _graph_def(new)
    if old_gd is new_gd:
        return ""
    changes = compare(old_gd, new_gd)
    if changes.empty and _graph_fields(old_gd) == _graph_fields(new_gd):
        return ""
    findings = [f for f in findings if f.fixed]
    new_by = {n.name: n for n in new_gd.node}
    kinds = ("added", "removed", "rewired", "changed")
    rows = [dict.fromkeys(kinds, 0) for _ in range(len(findings) + 1)]  # the last: other
    for kind, name in changes.order:
        i = _owner(name, findings)
        if i is None and kind in ("rewired", "changed"):  # attributed by what it now reads
            for inp in new_by[name].input:
                i = _owner(inp.lstrip("^").split(":")[0], findings)
                if i is not None:
                    break
        rows[len(findings) if i is None else i][kind] += 1
    labels = [f"{f.code} {f.node}" for f in findings] + ["other"]
    table = [(lab, r) for lab, r in zip(labels, rows) if any(r.values())]
    table.append(("total", {k: sum(r[k] for r in rows) for k in kinds}))
    width = max(len(lab) for lab, _ in table)
    cols = {k: max(len(str(r[k])) for _, r in table) for k in kinds}
    out = [f"graphfix diff --stat {old_label} -> {new_label}"]
    for lab, r in table:
        out.append(f" {lab.ljust(width)}  " + "  ".join(f"{str(r[k]).rjust(cols[k])} {k}" for k in kinds))
    if _graph_fields(old_gd) != _graph_fields(new_gd):
        out.append(" graph fields (versions, library) changed")
    return "\n".join(out) + "\n"
