"""Lossless GraphDef <-> networkx IR.

``GraphIR.g`` is a ``networkx.DiGraph``.  Its nodes are node names; each
carries its ``NodeDef`` under ``"node"`` — the message of the source GraphDef
itself, referenced, not copied (a NodeDef is copied the first time an edit
touches it, when the IR protects its source).  An edge ``src -> dst`` means
``dst``'s ``NodeDef.input`` names ``src``; its data dict is empty when one
input does, and holds ``"count"`` when several do (``add(x, x)`` is one edge
with ``{"count": 2}``; data and ``^control`` inputs together): read it as
``g.edges[src, dst].get("count", 1)``.

The networkx graph is a view, built the first time ``ir.g`` is read (and
again after an edit: read ``ir.g`` anew after editing).  graphfix itself
works on compact indexes beside the NodeDefs, so that checking a graph does
not pay for a dict per node and per edge: per node its data inputs (a tuple
of producer names, with the output indices where one is not 0), its control
inputs where it has some, and its consumers (one name, or a dict consumer ->
number of inputs that read it).  ``NodeDef.input`` is the source of truth,
parsed once per node; :meth:`GraphIR.inputs`, :meth:`GraphIR.consumers`,
:meth:`GraphIR.ancestors`, :meth:`GraphIR.descendants` … answer from the
indexes.  A node of the source GraphDef is found by its place in it, so the
IR holds no NodeDef object of its own until an edit copies or adds one.
Every edit goes through the small edit API below, which keeps the indexes
and the NodeDefs in step.  ``library``, ``versions`` and node order are
kept, and an unedited IR gives back the GraphDef it was built from.

Besides the graph, a GraphIR holds what one graphfix session learns about it
and must carry across edits: the MetaGraphDef it came in (while-loop
contexts), the values of a function body's arguments, the log of regions the
current fix replaced, scratch names a guard's output took over, and the
contexts and node names of regenerated loop gradients.  Only the IR's own
methods change them.

Each edit is journalled (:meth:`GraphIR.changes_since`): which nodes it added,
removed or rewired.  Analyses use the journal to update what they computed
for an earlier version instead of starting over.  The IR keeps a few indexes
of its own where a per-fix step would otherwise read every node — names in
output order, each node's op, the nodes graphfix built (``/graphfix/`` in
the name), colocation targets — built on first use and kept up to date by
the edits.
"""
from __future__ import annotations

import bisect
import gc

import networkx as nx

from graphfix.core.errors import GraphfixError
from graphfix.core.optables import ARITY

MARK = "/graphfix/"  # in the name of every node graphfix builds (``<anchor>/graphfix/<CODE>/…``)


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
    """A mutable graph over NodeDefs, seen as a ``networkx.DiGraph`` (see the module docstring)."""

    def __init__(self, graph_def, copy: bool = True, *, meta_graph=None, arg_values=None):
        # copy=True protects ``graph_def``: a NodeDef is copied the first time
        # an edit touches it (copy on write), instead of the whole graph up front.
        self.version = 0
        self.changed = False
        self._meta_graph = meta_graph
        self._arg_values = dict(arg_values or {})
        self._edit_log: list | None = None
        self._renamed: dict[str, str] = {}
        self._regen_contexts = None
        self._regen_names: set[str] = set()
        self._validated = False
        self._build(graph_def, copy)

    def _build(self, graph_def, copy: bool) -> None:
        """(Re)build the graph and its indexes from ``graph_def``.  The build
        makes a few objects per node and edge and no reference cycle, so the
        cyclic garbage collector, which would walk the growing heap again and
        again meanwhile, is paused."""
        paused = gc.isenabled()
        gc.disable()
        try:
            forward = self._build_indexes(graph_def, copy)
            # A cycle outside a while loop is an error up front: analyses walk the
            # graph in topological order and must not see one (the order is cached).
            # When every input names a node before it, there is none, and the
            # order is made only if an analysis asks for it.
            self._topo: tuple[int, list[str]] | None = None
            if not forward:
                self.topo_order()
        finally:
            if paused:
                gc.enable()

    def _build_indexes(self, graph_def, copy: bool) -> bool:
        """Build the indexes; True if every input names a node placed before its reader."""
        self._cow = copy
        self._nd: dict = {}  # NodeDefs not read from the source by index: copies made by edits, added nodes
        self._source = graph_def
        self._src_nodes = nodes = graph_def.node
        self._journal: list[tuple[int, frozenset | None]] = [(self.version, None)]
        self._g: nx.DiGraph | None = None  # the networkx view, built on first use (see :attr:`g`)
        self._g_version = -1
        # name -> its place; names[place] is the one str object every index holds for it
        order = self.order = {}
        names = []
        for i, n in enumerate(nodes):
            name = n.name
            if name in order:
                raise GraphfixError(f"duplicate node name {name!r}")
            order[name] = i
            names.append(name)
        self._next = len(names)
        # Data inputs as a tuple of producers per node (``_outs`` holds the
        # output indices where one is not 0), control inputs only where a
        # node has some, and each producer's consumers: the one consumer's
        # name, or a dict consumer -> number of inputs reading it.
        ins, outs, ctrls, succ = self._ins, self._outs, self._ctrl, self._out = {}, {}, {}, {}
        ops, op_names = self._ops, self._op_names = {}, {}  # node -> op; one str per op name
        self._unread: set[str] = set()  # live nodes whose op is not in _ops (edited or added since)
        self._ops_in_order = True  # _ops holds every live node, in output order (until an edit)
        self._coloc: set[str] | None = None  # nodes with a colocation list (made on first use)
        arity = ARITY
        forward = True
        for i, (dst, n) in enumerate(zip(names, nodes)):
            srcs = []
            idxs = ctrl = None
            for s in n.input:
                j = order.get(s)  # most inputs name output 0 of a node: no parsing
                if j is not None:
                    is_ctrl, out = False, 0
                else:
                    is_ctrl = s[:1] == "^"
                    if is_ctrl:
                        src, out = s[1:], -1
                    else:
                        src, sep, idx = s.rpartition(":")
                        if sep and idx.isdigit():
                            out = int(idx)
                        else:
                            src, out = s, 0
                    j = order.get(src)
                    if j is None:
                        raise GraphfixError(f"node {dst!r} input {s!r} names a missing node")
                src = names[j]
                if j >= i:
                    forward = False
                cur = succ.get(src)
                if cur is None:
                    if src == dst:
                        raise GraphfixError(f"the graph has a cycle: node {dst!r} reads its own output ({s!r})")
                    succ[src] = dst
                elif cur.__class__ is str:
                    succ[src] = {cur: 2} if cur == dst else {cur: 1, dst: 1}
                else:
                    cur[dst] = cur.get(dst, 0) + 1
                if is_ctrl:
                    if ctrl is None:
                        ctrl = []
                    ctrl.append(src)
                else:
                    if ctrl is not None:
                        raise GraphfixError(f"node {dst!r} has data input {s!r} after a control input: "
                                            "the graph is malformed")
                    if out:
                        if idxs is None:
                            idxs = [0] * len(srcs)
                        idxs.append(out)
                    elif idxs is not None:
                        idxs.append(0)
                    srcs.append(src)
            ins[dst] = tuple(srcs)
            if idxs is not None:
                outs[dst] = tuple(idxs)
            if ctrl is not None:
                ctrls[dst] = tuple(ctrl)
            op = n.op
            op = ops[dst] = op_names.setdefault(op, op)
            want = arity.get(op)
            if want is not None and len(srcs) != want:
                raise GraphfixError(f"node {dst!r} ({op}) has {len(srcs)} data input(s), the op takes {want}: "
                                    "the graph is malformed")
        self._names: list[str] | None = names  # names in output order (kept up to date by the edits)
        self._pending: set[str] = set()  # handed out by mutable() since the last journalled edit
        self._marked: set[str] | None = None  # names containing MARK (lazy)
        self._marked_sorted: list[str] = []  # the same, sorted by name (for scope_in_use)
        self._locs: dict[str, set[str]] | None = None  # colocation target -> nodes naming it (lazy)
        self._dangling: set[str] = set()  # targets in _locs that name no node
        self._locs_version = self.version
        self._sorted_order: list | None = None  # every node's order value, sorted (lazy)
        return forward

    # ------------------------------------------------------------ session state
    @property
    def meta_graph(self):
        """The MetaGraphDef the graph came in (its while/cond contexts), or None."""
        return self._meta_graph

    @property
    def arg_values(self) -> dict:
        """For a function body: argument name -> the abstract value its call sites pass."""
        return self._arg_values

    @property
    def renamed(self) -> dict[str, str]:
        """Scratch node name -> the name a guard's output took over (see graphfix.analysis.gradpath)."""
        return self._renamed

    def note_renamed(self, scratch: str, kept: str) -> None:
        self._renamed[scratch] = kept

    @property
    def regen_contexts(self):
        """The while contexts after a loop gradient was regenerated (None before)."""
        return self._regen_contexts

    @property
    def regen_names(self) -> set[str]:
        """Nodes a loop-gradient regeneration made (not new nodes of a guard)."""
        return self._regen_names

    @property
    def validated(self) -> bool:
        """graphfix.patch.scratch.validate_graph passed on this IR."""
        return self._validated

    def mark_validated(self) -> None:
        self._validated = True

    def start_edit_log(self) -> None:
        """Record the regions the next fix replaces (:meth:`log_edit`)."""
        self._edit_log = []

    def log_edit(self, entry: dict) -> None:
        """Record one replaced region, if a log was started."""
        if self._edit_log is not None:
            self._edit_log.append(entry)

    def end_edit_log(self) -> list | None:
        log, self._edit_log = self._edit_log, None
        return log

    def replace_graph(self, graph_def, regen_contexts=None, regen_names=()) -> None:
        """Become ``graph_def`` (referenced, not copied): the result of a
        regeneration in TensorFlow.  Session state is kept; every analysis of
        the old version is invalid."""
        version = self.version
        self._build(graph_def, copy=False)
        self.version = version + 1
        self.changed = True
        self._journal = [(self.version, None)]
        if regen_contexts is not None:
            self._regen_contexts = regen_contexts
        self._regen_names = self._regen_names | set(regen_names)

    def changes_since(self, version: int) -> set[str] | None:
        """Nodes added, removed or rewired (their inputs changed) since
        ``version``, or None when that is not known (the graph was replaced, or
        ``version`` is older than the journal)."""
        journal = self._journal
        if version < journal[0][0]:
            return None
        touched: set[str] = set()
        for _, names in journal[bisect.bisect_right(journal, version, key=lambda e: e[0]):]:
            if names is None:
                return None
            touched |= names
        return touched

    # ------------------------------------------------------------ networkx view
    @property
    def g(self) -> nx.DiGraph:
        """The graph as a ``networkx.DiGraph`` (see the module docstring),
        built on first use and again after an edit: take it anew after
        editing the IR, as an earlier one shows the earlier version."""
        if self._g is None or self._g_version != self.version:
            g = nx.DiGraph()
            nodes, succ, pred = g._node, g._succ, g._pred
            for name in self.order:
                nodes[name] = {"node": self.node(name)}
                succ[name] = {}
                pred[name] = {}
            for name in self.order:
                s = succ[name]
                for dst, c in self._succ_items(name):
                    s[dst] = {} if c == 1 else {"count": c}
            for name in self.order:
                p = pred[name]
                for src in self._srcs(name):
                    p[src] = succ[src][name]
            self._g, self._g_version = g, self.version
        return self._g

    # ------------------------------------------------------------ adjacency
    def _dsts(self, name: str):
        """The consumers of ``name``, each once, in the order they were linked."""
        cur = self._out.get(name)
        if cur is None:
            return ()
        if cur.__class__ is str:
            return (cur,)
        return cur

    def _succ_items(self, name: str):
        """(consumer, how many of its inputs read ``name``) pairs."""
        cur = self._out.get(name)
        if cur is None:
            return ()
        if cur.__class__ is str:
            return ((cur, 1),)
        return cur.items()

    def _succ_add(self, src: str, dst: str, count: int = 1) -> None:
        out = self._out
        cur = out.get(src)
        if cur is None:
            out[src] = dst if count == 1 else {dst: count}
        elif cur.__class__ is str:
            out[src] = {cur: 1 + count} if cur == dst else {cur: 1, dst: count}
        else:
            cur[dst] = cur.get(dst, 0) + count

    def _succ_del(self, src: str, dst: str) -> None:
        """Forget every edge ``src -> dst``."""
        out = self._out
        cur = out.get(src)
        if cur is None:
            return
        if cur.__class__ is str:
            if cur == dst:
                del out[src]
            return
        cur.pop(dst, None)
        if not cur:
            del out[src]
        elif len(cur) == 1:
            (only, c), = cur.items()
            if c == 1:
                out[src] = only

    def _srcs(self, name: str) -> dict[str, int]:
        """The producers ``name`` reads (data and control), each with how many of its inputs read it."""
        res: dict[str, int] = {}
        for src in self._ins[name]:
            res[src] = res.get(src, 0) + 1
        for src in self._ctrl.get(name, ()):
            res[src] = res.get(src, 0) + 1
        return res

    def _index_inputs(self, name: str) -> None:
        """Read ``name``'s inputs again from its NodeDef (the links are not touched)."""
        srcs, outs, ctrl = [], [], []
        for s in self.node(name).input:
            src, out, is_ctrl = parse_input(s)
            if is_ctrl:
                ctrl.append(src)
            else:
                srcs.append(src)
                outs.append(out)
        self._ins[name] = tuple(srcs)
        if any(outs):
            self._outs[name] = tuple(outs)
        else:
            self._outs.pop(name, None)
        if ctrl:
            self._ctrl[name] = tuple(ctrl)
        else:
            self._ctrl.pop(name, None)

    def predecessors(self, name: str) -> list[str]:
        """The nodes ``name`` reads (data and control inputs), each once, in input order."""
        return list(self._srcs(name))

    def ancestors(self, name: str) -> set[str]:
        """Every node ``name`` depends on through data or control inputs (not ``name``
        itself), as ``networkx.ancestors(ir.g, name)``."""
        if name not in self.order:
            raise GraphfixError(f"no node {name!r} in the graph")
        ins, ctrl = self._ins, self._ctrl
        seen: set[str] = set()
        stack = [name]
        while stack:
            n = stack.pop()
            for src in ins[n]:
                if src not in seen:
                    seen.add(src)
                    stack.append(src)
            for src in ctrl.get(n, ()):
                if src not in seen:
                    seen.add(src)
                    stack.append(src)
        seen.discard(name)
        return seen

    def descendants(self, name: str) -> set[str]:
        """Every node that depends on ``name`` (not ``name`` itself), as
        ``networkx.descendants(ir.g, name)``."""
        if name not in self.order:
            raise GraphfixError(f"no node {name!r} in the graph")
        seen: set[str] = set()
        stack = [name]
        while stack:
            for dst in self._dsts(stack.pop()):
                if dst not in seen:
                    seen.add(dst)
                    stack.append(dst)
        seen.discard(name)
        return seen

    def has_path(self, src: str, dst: str) -> bool:
        """``dst`` is ``src`` or depends on it, as ``networkx.has_path(ir.g, src, dst)``."""
        if src not in self.order or dst not in self.order:
            raise GraphfixError(f"no node {src if src not in self.order else dst!r} in the graph")
        if src == dst:
            return True
        ins, ctrl = self._ins, self._ctrl
        seen = {dst}
        stack = [dst]
        while stack:
            n = stack.pop()
            for s in (*ins[n], *ctrl.get(n, ())):
                if s == src:
                    return True
                if s not in seen:
                    seen.add(s)
                    stack.append(s)
        return False

    # ------------------------------------------------------------ queries
    def __contains__(self, name: str) -> bool:
        return name in self.order

    def __len__(self) -> int:
        return len(self.order)

    @property
    def library(self):
        """The source GraphDef's function library (function names are ops too)."""
        return self._source.library if self._source.HasField("library") else None

    def node(self, name: str):
        """The NodeDef of ``name`` — read only; edit through :meth:`mutable` or the edit API."""
        n = self._nd.get(name)
        if n is None:
            return self._src_nodes[self.order[name]]
        return n

    def reads_other_outputs(self) -> list[str]:
        """The nodes with a data input that reads an output other than 0 (from the index, not the NodeDefs)."""
        return list(self._outs)

    def colocated(self) -> list[str]:
        """Nodes that carry a colocation constraint (``_class``), in order."""
        live = [n for n in self._coloc_index() if n in self.order]
        return sorted(live, key=self.order.__getitem__)

    def _coloc_index(self) -> set[str]:
        """Nodes that have (or had) a ``_class`` list: read from the NodeDefs
        the first time it is needed (a check never needs it), then kept by the edits."""
        if self._coloc is None:
            self._coloc = {n for n in self.names() if "_class" in self.node(n).attr}
        return self._coloc

    def marked(self) -> list[str]:
        """Nodes whose name contains ``/graphfix/`` (what graphfix built), in
        output order; indexed, so finding them does not read every name."""
        return sorted(self._marked_index(), key=self.order.__getitem__)

    def _marked_index(self) -> set[str]:
        if self._marked is None:
            self._marked = {n for n in self.order if MARK in n}
            self._marked_sorted = sorted(self._marked)
        return self._marked

    def scope_in_use(self, scope: str) -> bool:
        """A node is named ``scope`` or lives under ``scope/``."""
        if scope in self.order:
            return True
        pre = scope + "/"
        if MARK in pre:  # a guard's scope: a bisection of the names graphfix built
            self._marked_index()
            names = self._marked_sorted
            i = bisect.bisect_left(names, pre)
            return i < len(names) and names[i].startswith(pre)
        return any(n.startswith(pre) for n in self.order)

    def dangling_colocations(self) -> list[str]:
        """Nodes whose ``_class`` names a node that is not in the graph, or
        names one twice (in order; a superset is fine: callers read the attr
        again).  Indexed by target, so this does not read every node."""
        live = self.order
        since = None if self._locs is None else self.changes_since(self._locs_version)
        if since is None:
            self._locs, self._dangling = {}, set()
            for name in self._coloc_index():
                if name in live:
                    self._index_locs(name)
        else:  # targets removed (or added again) since the last call
            for name in since:
                if name in self._locs:
                    if name in live:
                        self._dangling.discard(name)
                    else:
                        self._dangling.add(name)
        self._locs_version = self.version
        res = set()
        for target in list(self._dangling):
            nodes = {n for n in self._locs[target] if n in live}
            if nodes:
                res |= nodes
            elif target:  # nothing live names it: forget it ("" stays: a node added later may repeat one)
                self._dangling.discard(target)
                del self._locs[target]
        return sorted(res, key=self.order.__getitem__)

    def _index_locs(self, name: str) -> None:
        n = self.node(name)
        if "_class" in n.attr:
            locs = list(n.attr["_class"].list.s)
            for loc in locs:
                if loc.startswith(b"loc:@"):
                    target = loc[5:].decode()
                    self._locs.setdefault(target, set()).add(name)
                    if target not in self.order:
                        self._dangling.add(target)
            if len(set(locs)) < len(locs):
                self._locs.setdefault("", set()).add(name)  # no node is named "": always listed
                self._dangling.add("")

    def set_colocation(self, name: str, locs: list[bytes]) -> None:
        """Set (or, when empty, drop) the ``_class`` colocation list of ``name``."""
        n = self.mutable(name)
        del n.attr["_class"].list.s[:]
        n.attr["_class"].list.s.extend(locs)
        if not locs:
            del n.attr["_class"]
        elif self._locs is not None:
            self._index_locs(name)

    def mutable(self, name: str):
        """The NodeDef of ``name``, safe to edit (copied first when the IR protects its source).
        The next edit's journal entry counts ``name`` as touched."""
        self._pending.add(name)
        self._ops.pop(name, None)
        self._unread.add(name)
        self._ops_in_order = False
        n = self._nd.get(name)
        if n is not None:
            return n
        n = self._src_nodes[self.order[name]]
        if self._cow:
            nd = type(n)()
            nd.CopyFrom(n)
            n = self._nd[name] = nd
            self._g = None  # its node attributes name the source's NodeDef
        return n

    def op(self, name: str) -> str:
        try:
            return self._ops[name]
        except KeyError:  # edited since (mutable() forgets it)
            op = self.node(name).op
            op = self._ops[name] = self._op_names.setdefault(op, op)
            self._unread.discard(name)
            return op

    def op_table(self) -> dict[str, str]:
        """Every node's op, as a new dict ``{name: op}`` in output order (a
        copy of the index while no edit has reordered it, not a call per node)."""
        if self._ops_in_order:
            return dict(self._ops)
        return {n: self.op(n) for n in self.names()}

    def has_op(self, *ops: str) -> bool:
        """Some node's op is one of ``ops`` (without a call per node)."""
        want = set(ops)
        if not want.isdisjoint(self._ops.values()):
            return True
        return any(self.op(n) in want for n in list(self._unread) if n in self.order)

    def _nodes_with_op(self, op: str) -> set[str]:
        res = {n for n, o in self._ops.items() if o == op}
        for n in list(self._unread):
            if n in self.order and self.op(n) == op:
                res.add(n)
        return res

    def names(self) -> list[str]:
        """Node names in output order (indexed; the edits keep the index in order)."""
        if self._names is None:
            self._names = sorted(self.order, key=self.order.__getitem__)
        return list(self._names)

    def producers(self, name: str) -> tuple[str, ...]:
        """The nodes ``name``'s data inputs read, in input order (one per input),
        for walks that need no output index."""
        return self._ins[name]

    def inputs(self, name: str) -> list[tuple[str, int]]:
        """Data inputs of ``name`` in order, as (producer, output index)."""
        outs = self._outs.get(name)
        if outs is None:
            return [(src, 0) for src in self._ins[name]]
        return list(zip(self._ins[name], outs))

    def input(self, name: str, i: int = 0) -> tuple[str, int]:
        srcs = self._ins[name]
        if i >= len(srcs):
            # A rule asks for an input every well-formed node of this op has.
            raise GraphfixError(f"node {name!r} ({self.op(name)}) has {len(srcs)} data input(s), "
                                f"expected at least {i + 1}: the graph is malformed")
        outs = self._outs.get(name)
        return srcs[i], (outs[i] if outs is not None else 0)

    def consumers(self, name: str, out: int | None = None) -> list[tuple[str, int]]:
        """Data consumers of ``name`` (of its output ``out`` if given) as (consumer, input position)."""
        res = []
        ins, outs = self._ins, self._outs
        for dst in self._dsts(name):
            o = outs.get(dst)
            for pos, src in enumerate(ins[dst]):
                if src == name and (out is None or (o[pos] if o is not None else 0) == out):
                    res.append((dst, pos))
        if len(res) > 1:
            res.sort(key=lambda t: (self.order[t[0]], t[1]))
        return res

    def outputs_read(self, name: str) -> int:
        """1 + the highest output index of ``name`` a data input reads (0 if none)."""
        n = 0
        for dst in self._dsts(name):
            for src, o in self.inputs(dst):
                if src == name and o >= n:
                    n = o + 1
        return n

    def control_consumers(self, name: str) -> list[str]:
        res = []
        for dst, c in self._succ_items(name):
            if c > self._ins[dst].count(name):
                res.append(dst)
        return sorted(res, key=self.order.__getitem__)

    def successors(self, name: str) -> set[str]:
        return set(self._dsts(name))

    def has_consumers(self, name: str) -> bool:
        return name in self._out

    def attr(self, name: str, key: str, default=None):
        n = self.node(name)
        if key not in n.attr:
            return default
        return n.attr[key]

    # ------------------------------------------------------------ edits
    def _touch(self, names=()):
        self.version += 1
        self.changed = True
        touched = frozenset(names) | self._pending
        self._pending = set()
        self._journal.append((self.version, touched))
        if self._marked is not None:
            marked, names = self._marked, self._marked_sorted
            for n in touched:
                if MARK in n:
                    if n in self.order:
                        if n not in marked:
                            marked.add(n)
                            bisect.insort(names, n)
                    elif n in marked:
                        marked.discard(n)
                        del names[bisect.bisect_left(names, n)]

    def _unlink_inputs(self, name: str) -> None:
        for src in self._srcs(name):
            self._succ_del(src, name)

    def _reindex(self, name: str) -> None:
        self._unlink_inputs(name)
        order = self.order
        for s in self.node(name).input:
            if parse_input(s)[0] not in order:
                raise GraphfixError(f"node {name!r} input {s!r} names a missing node")
        self._index_inputs(name)
        for src, c in self._srcs(name).items():
            self._succ_add(src, name, c)

    def _add(self, nodedef) -> None:
        name = nodedef.name
        if name in self.order:
            raise GraphfixError(f"cannot add node {name!r}: the name is taken")
        self._nd[name] = nodedef
        self._ins[name] = ()  # linked by _reindex
        self._outs.pop(name, None)
        self._ctrl.pop(name, None)
        self._ops.pop(name, None)  # a removed node's, if the name is used again
        self._unread.add(name)
        self._ops_in_order = False
        self.order[name] = self._next
        if "_class" in nodedef.attr:
            if self._coloc is not None:
                self._coloc.add(name)
            if self._locs is not None:
                self._index_locs(name)
        if self._sorted_order is not None:
            self._sorted_order.append(self._next)
        if self._names is not None:
            self._names.append(name)  # the last place, until add_nodes moves it
        self._next += 1
        self._touch((name,))

    def add_node(self, nodedef) -> None:
        """Add a NodeDef whose inputs exist (:meth:`add_nodes` adds nodes that refer to each other)."""
        self._add(nodedef)
        self._reindex(nodedef.name)

    def add_nodes(self, nodedefs, after: str | None = None) -> None:
        """Add several NodeDefs that may refer to each other, then index their
        inputs.  With ``after``, they are placed right after that node in the
        output order (so a text diff of the graph stays local)."""
        for n in nodedefs:
            self._add(n)
        for n in nodedefs:
            self._reindex(n.name)
        if after is not None and nodedefs:
            lo = self.order[after]
            values = self._order_values()
            for n in nodedefs:  # the new nodes' provisional places (at the end) are not free
                del values[bisect.bisect_left(values, self.order[n.name])]
            i = bisect.bisect_right(values, lo)
            hi = values[i] if i < len(values) else lo + 1
            step = (hi - lo) / (len(nodedefs) + 1)
            if self._names is not None:
                del self._names[-len(nodedefs):]
            places = [lo + step * (k + 1) for k in range(len(nodedefs))]
            if all(a < b for a, b in zip([lo, *places], [*places, hi])):
                # in order and between their neighbours: one slice into each index
                for n, v in zip(nodedefs, places):
                    self.order[n.name] = v
                values[i:i] = places
                if self._names is not None:
                    j = bisect.bisect_right(self._names, lo, key=self.order.__getitem__)
                    self._names[j:j] = [n.name for n in nodedefs]
            else:  # places too close to tell apart: one at a time, as they sort
                for n, v in zip(nodedefs, places):
                    self.order[n.name] = v
                    bisect.insort(values, v)
                    if self._names is not None:
                        bisect.insort(self._names, n.name, key=self.order.__getitem__)

    def _order_values(self) -> list:
        """Every live node's order value, sorted (kept up to date by the edits once built)."""
        if self._sorted_order is None:
            self._sorted_order = sorted(self.order.values())
        return self._sorted_order

    def _forget(self, name: str, lists: bool = True) -> None:
        """Drop a removed node from the indexes (its inputs are unlinked already;
        ``lists=False``: the caller takes it out of the ordered lists)."""
        self._ops.pop(name, None)
        self._unread.discard(name)
        self._nd.pop(name, None)
        self._out.pop(name, None)
        del self._ins[name]
        self._outs.pop(name, None)
        self._ctrl.pop(name, None)
        if lists and self._names is not None:
            del self._names[bisect.bisect_left(self._names, self.order[name], key=self.order.__getitem__)]
        v = self.order.pop(name)
        if lists and self._sorted_order is not None:
            del self._sorted_order[bisect.bisect_left(self._sorted_order, v)]

    def _forget_places(self, removed: list[str]) -> None:
        """Take live nodes (in output order) out of the ordered lists: a
        removed block of nodes is one slice, not one shift of the list each."""
        order = self.order
        if self._names is not None:
            _del_places(self._names, [bisect.bisect_left(self._names, order[n], key=order.__getitem__)
                                      for n in removed])
        if self._sorted_order is not None:
            _del_places(self._sorted_order, [bisect.bisect_left(self._sorted_order, order[n]) for n in removed])

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
            self._touch(done + [old[0], new[0]])
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
            self._touch((dst, old, new))

    def rename(self, old: str, new: str) -> None:
        """Rename node ``old`` to ``new`` (free), updating every reference to it."""
        if new in self.order:
            raise GraphfixError(f"cannot rename {old!r} to {new!r}: the name is taken")
        consumers = sorted(self._dsts(old))
        n = self.mutable(old)
        n.name = new
        if old in self._nd:
            self._nd[new] = self._nd.pop(old)
        coloc = self._coloc is not None and old in self._coloc
        if coloc:
            self._coloc.add(new)
        self._relabel(old, new)
        if self._names is not None:
            self._names[bisect.bisect_left(self._names, self.order[old], key=self.order.__getitem__)] = new
        self.order[new] = self.order.pop(old)
        self._ops.pop(old, None)
        self._ops.pop(new, None)
        self._unread.discard(old)
        self._unread.add(new)
        self._ops_in_order = False
        if coloc and self._locs is not None:
            self._index_locs(new)
        for dst in consumers:
            d = self.mutable(dst)
            refs = []
            for s in d.input:
                src, out, ctrl = parse_input(s)
                if src == old:
                    s = "^" + new if ctrl else input_ref(new, out)
                refs.append(s)
            del d.input[:]
            d.input.extend(refs)
            self._index_inputs(dst)
        self._touch(consumers + [old, new])

    def _relabel(self, old: str, new: str) -> None:
        """Move ``old``'s links to ``new``, with the consumer orders
        ``networkx.relabel_nodes(g, {old: new}, copy=False)`` leaves."""
        out = self._out.pop(old, None)
        if out is not None:
            self._out[new] = out
        for src, c in self._srcs(old).items():
            self._succ_del(src, old)
            self._succ_add(src, new, c)
        for index in (self._ins, self._outs, self._ctrl):
            if old in index:
                index[new] = index.pop(old)

    def remove_node(self, name: str) -> None:
        if name in self._out:
            raise GraphfixError(f"cannot remove node {name!r}: it still has consumers")
        preds = list(self._srcs(name))
        self._unlink_inputs(name)
        self._forget(name)
        self._touch(preds + [name])

    def remove_dead(self, candidates) -> list[str]:
        """Remove the nodes of ``candidates`` that nothing outside the removed set consumes."""
        cand = set(candidates) & self.order.keys()
        changed = True
        while changed:
            changed = False
            for name in sorted(cand):
                if any(dst not in cand for dst in self._dsts(name)):
                    cand.discard(name)
                    changed = True
        removed = sorted(cand, key=self.order.__getitem__)
        preds = {src for name in removed for src in self._srcs(name)}
        for name in removed:
            self._unlink_inputs(name)
        self._forget_places(removed)
        for name in removed:
            self._forget(name, lists=False)
        if removed:
            self._touch(preds | set(removed))
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
        order, ins, ctrls, succ = self.order, self._ins, self._ctrl, self._out
        back = self._nodes_with_op("NextIteration")
        indeg = {}
        for name in order:
            t = ins[name]
            c = ctrls.get(name)
            if back:
                d = sum(1 for src in t if src not in back and src != name)
                if c is not None:
                    d += sum(1 for src in c if src not in back and src != name)
            else:
                d = len(t) - t.count(name)
                if c is not None:
                    d += len(c) - c.count(name)
            indeg[name] = d
        ready = sorted((n for n, d in indeg.items() if d == 0), key=order.__getitem__, reverse=True)
        res = []
        while ready:
            n = ready.pop()
            res.append(n)
            if n in back:
                continue
            cur = succ.get(n)
            if cur is None:
                continue
            if cur.__class__ is str:  # one consumer, one input (see _out)
                if cur != n:
                    indeg[cur] -= 1
                    if indeg[cur] == 0:
                        ready.append(cur)
                continue
            for dst, c in cur.items():
                if dst == n:
                    continue
                indeg[dst] -= c
                if indeg[dst] == 0:
                    ready.append(dst)
        if len(res) != len(indeg):
            stuck = sorted((n for n, d in indeg.items() if d > 0), key=order.__getitem__)
            raise GraphfixError(f"the graph has a cycle outside a while loop (through node {stuck[0]!r})")
        self._topo = (self.version, res)
        return list(res)


def _del_places(lst: list, places: list[int]) -> None:
    """Delete the items at ``places`` (ascending) from ``lst``, a run of consecutive places at a time."""
    runs: list[list[int]] = []
    for p in places:
        if runs and runs[-1][1] == p:
            runs[-1][1] = p + 1
        else:
            runs.append([p, p + 1])
    for a, b in reversed(runs):
        del lst[a:b]
