"""Lossless GraphDef <-> networkx IR.

Nodes of the ``networkx.MultiDiGraph`` are node names carrying their
``NodeDef`` (op, attrs, device, colocation, input order untouched); an edge
``src -> dst`` keyed by the position of the input in ``NodeDef.input`` carries
``out`` (the producer's output index) and ``ctrl`` (a ``^control`` input).
``NodeDef.input`` stays the source of truth: every edit goes through the
small edit API below, which keeps the two in step.  ``library``, ``versions``
and node order are kept, and an unedited IR gives back the GraphDef it was
built from.
"""
from __future__ import annotations

import networkx as nx

from graphfix.core.errors import GraphfixError
from graphfix.core.optables import ARITY


def parse_input(s: str) -> tuple[str, int, bool]:
    """``"^n"`` -> (n, -1, True); ``"n:2"`` -> (n, 2, False); ``"n"`` -> (n, 0, False)."""
    if s.startswith("^"):
        return s[1:], -1, True
    name, sep, idx = s.rpartition(":")
    if sep and idx.isdigit():
        return name, int(idx), False
    return s, 0, False


def tensor_name(node: str, out: int = 0) -> str:
    return f"{node}:{out}"


def split_tensor(t: str) -> tuple[str, int]:
    name, out, ctrl = parse_input(t)
    if ctrl:
        raise GraphfixError(f"{t!r} names a control input, not a tensor")
    return name, out


def input_ref(node: str, out: int) -> str:
    """The ``NodeDef.input`` spelling of a tensor (``n`` for output 0)."""
    return node if out == 0 else f"{node}:{out}"


def without_nodes(graph_def):
    """A copy of ``graph_def`` with every field but its nodes (library,
    versions, …): the frame a rewritten node list goes into."""
    out = type(graph_def)()
    for field, value in graph_def.ListFields():
        if field.name == "node":
            continue
        if field.message_type is not None:
            getattr(out, field.name).CopyFrom(value)
        else:
            setattr(out, field.name, value)
    return out


class GraphIR:
    """A mutable graph over NodeDefs, backed by ``networkx.MultiDiGraph``."""

    def __init__(self, graph_def, copy: bool = True):
        # copy=True protects ``graph_def``: a NodeDef is copied the first time
        # an edit touches it (copy on write), instead of the whole graph up front.
        self._cow = copy
        self._owned: set[str] = set()
        self._source = graph_def
        self.g = nx.MultiDiGraph()
        self.order: dict[str, int] = {}
        self.version = 0
        self.changed = False
        nodes = graph_def.node
        names = {}
        for i, n in enumerate(nodes):
            if n.name in names:
                raise GraphfixError(f"duplicate node name {n.name!r}")
            names[n.name] = n
            self.order[n.name] = i
        self._next = len(nodes)
        # Built in bulk straight into networkx's adjacency dicts (the same
        # structure add_edges_from makes, at a fraction of the cost): one
        # shared attribute dict per edge, in _succ and _pred.
        node_attr = self.g._node
        succ, pred = self.g._succ, self.g._pred
        for name, n in names.items():
            node_attr[name] = {"node": n}
            succ[name] = {}
            pred[name] = {}
        self._ins: dict[str, list[tuple[str, int]]] = {}
        self._coloc = {n.name for n in nodes if "_class" in n.attr}
        for n in nodes:
            n_data = 0
            dst = n.name
            p = pred[dst]
            data = []
            for i, s in enumerate(n.input):
                src, out, ctrl = parse_input(s)
                if src not in names:
                    raise GraphfixError(f"node {n.name!r} input {s!r} names a missing node")
                if src == dst:
                    raise GraphfixError(f"the graph has a cycle: node {n.name!r} reads its own output ({s!r})")
                if not ctrl:
                    if n_data < i:
                        raise GraphfixError(f"node {n.name!r} has data input {s!r} after a control input: "
                                            "the graph is malformed")
                    n_data += 1
                    data.append((src, out))
                d = {"out": out, "ctrl": ctrl}
                sd = succ[src].get(dst)
                if sd is None:
                    sd = succ[src][dst] = {}
                    p[src] = {}
                sd[i] = d
                p[src][i] = d
            self._ins[dst] = data
            want = ARITY.get(n.op)
            if want is not None and n_data != want:
                raise GraphfixError(f"node {n.name!r} ({n.op}) has {n_data} data input(s), the op takes {want}: "
                                    "the graph is malformed")
        self._names: tuple[int, list[str]] | None = None
        # A cycle outside a while loop is an error up front: analyses walk the
        # graph in topological order and must not see one (the order is cached).
        self._topo: tuple[int, list[str]] | None = None
        self.topo_order()

    # ------------------------------------------------------------ queries
    def __contains__(self, name: str) -> bool:
        return name in self.g

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    @property
    def library(self):
        """The source GraphDef's function library (function names are ops too)."""
        return self._source.library if self._source.HasField("library") else None

    def node(self, name: str):
        """The NodeDef of ``name`` — read only; edit through :meth:`mutable` or the edit API."""
        return self.g._node[name]["node"]

    def colocated(self) -> list[str]:
        """Nodes that carry a colocation constraint (``_class``), in order."""
        live = [n for n in self._coloc if n in self.g._node]
        return sorted(live, key=self.order.__getitem__)

    def mutable(self, name: str):
        """The NodeDef of ``name``, safe to edit (copied first when the IR protects its source)."""
        attrs = self.g._node[name]
        if self._cow and name not in self._owned:
            nd = type(attrs["node"])()
            nd.CopyFrom(attrs["node"])
            attrs["node"] = nd
            self._owned.add(name)
        return attrs["node"]

    def op(self, name: str) -> str:
        return self.g._node[name]["node"].op

    def names(self) -> list[str]:
        """Node names in output order (cached per IR version)."""
        if self._names is None or self._names[0] != self.version:
            self._names = (self.version, sorted(self.g._node, key=self.order.__getitem__))
        return list(self._names[1])

    def inputs(self, name: str) -> list[tuple[str, int]]:
        """Data inputs of ``name`` in order, as (producer, output index)."""
        ins = self._ins.get(name)
        if ins is None:
            ins = []
            for s in self.node(name).input:
                src, out, ctrl = parse_input(s)
                if not ctrl:
                    ins.append((src, out))
            self._ins[name] = ins
        return list(ins)

    def input(self, name: str, i: int = 0) -> tuple[str, int]:
        ins = self.inputs(name)
        if i >= len(ins):
            # A rule asks for an input every well-formed node of this op has.
            raise GraphfixError(f"node {name!r} ({self.op(name)}) has {len(ins)} data input(s), "
                                f"expected at least {i + 1}: the graph is malformed")
        return ins[i]

    def consumers(self, name: str, out: int | None = None) -> list[tuple[str, int]]:
        """Data consumers of ``name`` (of its output ``out`` if given) as (consumer, input position)."""
        res = []
        for dst, keyed in self.g._succ[name].items():
            for key, d in keyed.items():
                if not d["ctrl"] and (out is None or d["out"] == out):
                    res.append((dst, key))
        if len(res) > 1:
            res.sort(key=lambda t: (self.order[t[0]], t[1]))
        return res

    def control_consumers(self, name: str) -> list[str]:
        res = {dst for dst, keyed in self.g._succ[name].items() if any(d["ctrl"] for d in keyed.values())}
        return sorted(res, key=self.order.__getitem__)

    def successors(self, name: str) -> set[str]:
        return set(self.g.successors(name))

    def has_consumers(self, name: str) -> bool:
        return self.g.out_degree(name) > 0

    def attr(self, name: str, key: str, default=None):
        n = self.node(name)
        if key not in n.attr:
            return default
        return n.attr[key]

    # ------------------------------------------------------------ edits
    def _touch(self):
        self.version += 1
        self.changed = True

    def _reindex(self, name: str) -> None:
        self._ins.pop(name, None)
        self.g.remove_edges_from(list(self.g.in_edges(name, keys=True)))
        n = self.node(name)
        edges = []
        for i, s in enumerate(n.input):
            src, out, ctrl = parse_input(s)
            if src not in self.g:
                raise GraphfixError(f"node {name!r} input {s!r} names a missing node")
            edges.append((src, name, i, {"out": out, "ctrl": ctrl}))
        self.g.add_edges_from(edges)

    def add_node(self, nodedef) -> None:
        """Add a NodeDef (its inputs must exist, or be added before the next edit that reads them)."""
        if nodedef.name in self.g:
            raise GraphfixError(f"cannot add node {nodedef.name!r}: the name is taken")
        self.g.add_node(nodedef.name, node=nodedef)
        self._owned.add(nodedef.name)
        if "_class" in nodedef.attr:
            self._coloc.add(nodedef.name)
        self._ins.pop(nodedef.name, None)
        self.order[nodedef.name] = self._next
        self._next += 1
        self._touch()

    def add_nodes(self, nodedefs, after: str | None = None) -> None:
        """Add several NodeDefs that may refer to each other, then index their
        inputs.  With ``after``, they are placed right after that node in the
        output order (so a text diff of the graph stays local)."""
        for n in nodedefs:
            self.add_node(n)
        for n in nodedefs:
            self._reindex(n.name)
        if after is not None and nodedefs:
            lo = self.order[after]
            new = {n.name for n in nodedefs}
            hi = min((v for k, v in self.order.items() if v > lo and k not in new), default=lo + 1)
            step = (hi - lo) / (len(nodedefs) + 1)
            for k, n in enumerate(nodedefs):
                self.order[n.name] = lo + step * (k + 1)

    def replace_uses(self, old: tuple[str, int], new: tuple[str, int], exclude=()) -> list[str]:
        """Point every data consumer of tensor ``old`` (but those in ``exclude``) at ``new``."""
        exclude = set(exclude)
        done = []
        for dst, pos in self.consumers(old[0], old[1]):
            if dst in exclude:
                continue
            self.mutable(dst).input[pos] = input_ref(*new)
            if dst not in done:
                done.append(dst)
        for dst in done:
            self._reindex(dst)
        if done:
            self._touch()
        return done

    def replace_control_uses(self, old: str, new: str, exclude=()) -> None:
        exclude = set(exclude)
        for dst in self.control_consumers(old):
            if dst in exclude:
                continue
            n = self.mutable(dst)
            refs = [s for s in n.input if s != "^" + old]
            if "^" + new not in refs and new != dst:
                refs.append("^" + new)
            del n.input[:]
            n.input.extend(refs)
            self._reindex(dst)
            self._touch()

    def rename(self, old: str, new: str) -> None:
        """Rename node ``old`` to ``new`` (free), updating every reference to it."""
        if new in self.g:
            raise GraphfixError(f"cannot rename {old!r} to {new!r}: the name is taken")
        consumers = sorted({dst for _, dst in self.g.out_edges(old)})
        n = self.mutable(old)
        n.name = new
        self._owned.discard(old)
        self._owned.add(new)
        if old in self._coloc:
            self._coloc.add(new)
        self.g = nx.relabel_nodes(self.g, {old: new}, copy=False)
        self.order[new] = self.order.pop(old)
        self._ins.pop(old, None)
        self._ins.pop(new, None)
        for dst in consumers:
            self._ins.pop(dst, None)
            d = self.mutable(dst)
            refs = []
            for s in d.input:
                src, out, ctrl = parse_input(s)
                if src == old:
                    s = "^" + new if ctrl else input_ref(new, out)
                refs.append(s)
            del d.input[:]
            d.input.extend(refs)
        self._touch()

    def remove_node(self, name: str) -> None:
        if self.g.out_degree(name):
            raise GraphfixError(f"cannot remove node {name!r}: it still has consumers")
        self.g.remove_node(name)
        self._ins.pop(name, None)
        del self.order[name]
        self._touch()

    def remove_dead(self, candidates) -> list[str]:
        """Remove the nodes of ``candidates`` that nothing outside the removed set consumes."""
        cand = set(candidates) & set(self.g.nodes)
        changed = True
        while changed:
            changed = False
            for name in sorted(cand):
                if any(dst not in cand for dst in self.g.successors(name)):
                    cand.discard(name)
                    changed = True
        removed = sorted(cand, key=self.order.__getitem__)
        self.g.remove_nodes_from(removed)
        for name in removed:
            del self.order[name]
            self._ins.pop(name, None)
        if removed:
            self._touch()
        return removed

    # ------------------------------------------------------------ output
    def to_graph_def(self):
        """The GraphDef (the source one, untouched, when nothing was edited)."""
        if not self.changed:
            return self._source
        out = without_nodes(self._source)
        out.node.extend(self.node(name) for name in self.names())
        return out

    def topo_order(self) -> list[str]:
        """Nodes with every producer before its consumers; while-loop back edges
        (from ``NextIteration``) are ignored so loops do not block the order.
        Cached per IR version."""
        if self._topo is not None and self._topo[0] == self.version:
            return list(self._topo[1])
        nodes, succ, pred = self.g._node, self.g._succ, self.g._pred
        back = {n for n, a in nodes.items() if a["node"].op == "NextIteration"}
        indeg = {}
        for name, srcs in pred.items():
            indeg[name] = sum(len(keyed) for src, keyed in srcs.items() if src not in back and src != name)
        ready = sorted((n for n, d in indeg.items() if d == 0), key=self.order.__getitem__, reverse=True)
        res = []
        while ready:
            n = ready.pop()
            res.append(n)
            if n in back:
                continue
            for dst, keyed in succ[n].items():
                if dst == n:
                    continue
                indeg[dst] -= len(keyed)
                if indeg[dst] == 0:
                    ready.append(dst)
        if len(res) != len(indeg):
            stuck = sorted((n for n, d in indeg.items() if d > 0), key=self.order.__getitem__)
            raise GraphfixError(f"the graph has a cycle outside a while loop (through node {stuck[0]!r})")
        self._topo = (self.version, res)
        return list(res)
