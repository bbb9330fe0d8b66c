"""Gradient structure: which nodes belong to which ``tf.gradients`` call, and
which ops lie on the path from the variables to a loss.

Two kinds of gradient scope live in a training graph:

* TensorFlow's: ``<prefix>/<op>_grad/…`` under a ``tf.gradients`` prefix
  (``gradients``, ``gradients_1``, ``train/gradients`` …);
* graphfix's: a repair splices the gradient of its guard in under
  ``<anchor>/graphfix/<CODE>[_n]/grad[_k]/<op>_grad/…``, where ``<op>`` is the
  name the guard's op had in the scratch graph it was built in
  (``Log/graphfix/GF006/Log``).  When the guard's output took over the name of
  the op it replaced (``Log``), the scope belongs to the renamed node.

A rule may guard an op another rule created (GF009 clamping the ``Log`` GF006
rebuilt), so both kinds are indexed alike: ``(prefix, forward op) -> nodes``.
"""
from __future__ import annotations

import bisect
import re
from collections import defaultdict

import networkx as nx

# The first ``/graphfix/GF006[_1]/grad[_2]/`` of a name ends a spliced gradient prefix.
_SPLICED = re.compile(r"/graphfix/GF\d+(?:_\d+)?/grad(?:_\d+)?/")
_PASS_THROUGH = frozenset({"Identity", "Snapshot", "ReadVariableOp", "IdentityN", "Add", "AddV2", "AddN"})
_PASS_FIRST = frozenset({"BiasAdd", "Sub", "GatherNd", "Gather", "GatherV2", "ResourceGather"})  # IndexedSlices values
_CONTROL_FLOW = frozenset({"Merge", "RefMerge", "Switch", "RefSwitch", "Enter", "RefEnter", "Exit", "RefExit",
                           "NextIteration", "RefNextIteration", "LoopCond"})


def spliced_prefix(name: str) -> str | None:
    """``A/graphfix/GF006/grad`` for ``A/graphfix/GF006/grad/…``, else None."""
    if "/graphfix/" not in name:
        return None
    m = _SPLICED.search(name)
    return name[:m.end() - 1] if m else None


class GradScopes:
    """Index of gradient-function name scopes: ``(prefix, forward op) -> nodes``.

    ``tf.gradients`` builds the gradient of forward op ``X`` under
    ``<prefix>/X_grad/``; this maps each such scope back to ``X`` (the node
    of the IR now carrying it, see the module docstring).
    """

    def __init__(self, ir, prefixes):
        self.ir = ir
        real = sorted(set(prefixes), key=len, reverse=True)
        self._real = real
        self.scopes: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.built_as: dict[tuple[str, str], str] = {}  # (prefix, owner) -> the op's name when it was built
        self.members: set[str] = set()
        self.by_op: dict[str, list[str]] = defaultdict(list)  # forward op -> prefixes with a scope of it
        self.owner: dict[str, tuple[str, str]] = {}  # gradient node -> (prefix, forward op whose scope holds it)
        self._spliced: dict[str, int] = {}  # spliced prefix -> its member count
        self.prefixes = list(real)
        if not real:
            return
        for name in ir.names():
            self._add(name)
        self.prefixes = sorted(set(real) | set(self._spliced), key=len, reverse=True)

    def _add(self, name: str) -> tuple[str, str] | None:
        """Index ``name`` (appended: callers add in graph order); its scope key, if any."""
        gp = spliced_prefix(name)
        if gp is not None:
            self._spliced[gp] = self._spliced.get(gp, 0) + 1
        else:
            gp = next((p for p in self._real if name.startswith(p + "/")), None)
            if gp is None:
                return None
        self.members.add(name)
        rest = name[len(gp) + 1:]
        i = rest.find("_grad/")
        if i <= 0:
            return None
        real = gp in self._real
        built = rest[:i] if real else built_name(gp, rest[:i])
        fwd = built if real else _resolve(self.ir, gp, built, self.ir.renamed)
        key = (gp, fwd)
        nodes = self.scopes.get(key)
        if nodes is None:
            nodes = self.scopes[key] = []
            self.by_op[fwd].append(gp)
            self.built_as[key] = built
        nodes.append(name)
        self.owner[name] = key
        return key

    def updated(self, ir, touched: set[str]) -> "GradScopes":
        """This index for ``ir`` after edits that added, removed or rewired
        only ``touched`` (see GraphIR.changes_since): TensorFlow's scopes are
        updated node by node; graphfix's spliced ones — whose owners follow
        renames — are re-read from the nodes graphfix built (an index of the
        IR), so the cost follows the edits, not the graph."""
        new = object.__new__(GradScopes)
        new.ir = ir
        new._real = self._real
        new.prefixes = list(self._real)
        if not self._real:
            new.scopes, new.built_as, new.members = defaultdict(list), {}, set()
            new.by_op, new.owner, new._spliced = defaultdict(list), {}, {}
            return new
        order = ir.order
        new.scopes = defaultdict(list, self.scopes)  # lists are copied before they change
        new.built_as = dict(self.built_as)
        new.members = set(self.members)
        new.by_op = defaultdict(list, self.by_op)
        new.owner = dict(self.owner)
        new._spliced = {}
        copied: set = set()
        dirty_ops: set[str] = set()

        def drop(name):
            new.members.discard(name)
            key = new.owner.pop(name, None)
            if key is None:
                return
            if key not in copied:
                new.scopes[key] = list(new.scopes[key])
                copied.add(key)
            new.scopes[key].remove(name)
            if key[0] not in self._real:
                new.built_as.pop(key, None)  # set again by the scope's first node
            dirty_ops.add(key[1])

        for name in list(self.members):
            if spliced_prefix(name) is not None:
                drop(name)
        for name in touched:
            if name in self.members:
                drop(name)
        fresh = []
        for name in touched:
            if name in ir and spliced_prefix(name) is None and \
                    any(name.startswith(p + "/") for p in self._real):
                fresh.append(name)
        fresh.sort(key=order.__getitem__)
        for name in fresh + [n for n in ir.marked() if spliced_prefix(n) is not None]:
            gp = spliced_prefix(name)
            if gp is not None:
                new._spliced[gp] = new._spliced.get(gp, 0) + 1
            else:
                gp = next(p for p in self._real if name.startswith(p + "/"))
            new.members.add(name)
            rest = name[len(gp) + 1:]
            i = rest.find("_grad/")
            if i <= 0:
                continue
            real = gp in self._real
            built = rest[:i] if real else built_name(gp, rest[:i])
            fwd = built if real else _resolve(ir, gp, built, ir.renamed)
            key = (gp, fwd)
            if key not in copied:
                new.scopes[key] = list(new.scopes.get(key, ()))
                copied.add(key)
            bisect.insort(new.scopes[key], name, key=order.__getitem__)
            new.built_as.setdefault(key, built)
            new.owner[name] = key
            dirty_ops.add(fwd)
        touched_gps: dict[str, set[str]] = defaultdict(set)
        for gp, fwd in copied:
            touched_gps[fwd].add(gp)
        for fwd in dirty_ops:
            keys = [(gp, fwd) for gp in set(self.by_op.get(fwd, ())) | touched_gps[fwd]]
            live = []
            for key in keys:
                if new.scopes.get(key):
                    live.append(key)
                else:
                    new.scopes.pop(key, None)
                    new.built_as.pop(key, None)
            if live:
                new.by_op[fwd] = [k[0] for k in sorted(live, key=lambda k: order[new.scopes[k][0]])]
            else:
                new.by_op.pop(fwd, None)
        new.prefixes = sorted(set(self._real) | set(new._spliced), key=len, reverse=True)
        return new

    def has_scope(self, fwd: str) -> bool:
        """Some ``tf.gradients`` call differentiated forward op ``fwd``."""
        return any((gp, fwd) in self.scopes for gp in self.prefixes)

    def scope(self, prefix: str, fwd: str) -> list[str]:
        return self.scopes.get((prefix, fwd), [])

    def name_when_built(self, prefix: str, fwd: str) -> str:
        """The forward op's name when the scope was built (what its node names spell)."""
        return self.built_as.get((prefix, fwd), fwd)

    def owner_of(self, grad_node: str) -> str | None:
        """The forward op whose gradient scope holds ``grad_node``."""
        o = self.owner.get(grad_node)
        return o[1] if o else None

    def is_gradient_node(self, name: str) -> bool:
        """In a gradient subgraph: under a gradient prefix, or a gradient that
        graphfix spliced in (``<op>/graphfix/<CODE>/grad…/``)."""
        return name in self.members or (bool(self.prefixes) and spliced_prefix(name) is not None)

    def stale(self, ops) -> dict[str, list[str]]:
        """Gradient scopes (``"<prefix>/<op>_grad"`` -> nodes) of the forward ops
        ``ops`` that no longer describe them: the op is gone, or the scope reads
        a forward tensor that is neither an input nor an output of the op now
        carrying its name (it differentiates an op that was replaced)."""
        ir = self.ir
        res: dict[str, list[str]] = {}
        for fwd, gp in sorted((fwd, gp) for fwd in set(ops) for gp in self.by_op.get(fwd, ())):
            nodes = self.scopes[(gp, fwd)]
            label = f"{gp}/{self.built_as.get((gp, fwd), fwd)}_grad"
            if fwd not in ir:
                res[label] = nodes
                continue
            if ir.op(fwd) in _CONTROL_FLOW:  # their gradients read the cond/loop plumbing around them
                continue
            if not self._describes(fwd, nodes):
                res[label] = nodes
        return res

    def _describes(self, fwd: str, nodes: list[str]) -> bool:
        """The scope reads only ``fwd``, its inputs, constants and gradients, and
        hands its results (dL/d inputs) only to the gradient scopes of the ops
        producing ``fwd``'s inputs (through Identity-like reads), to
        aggregations of them, or out of the gradient subgraph (clipping, Apply*)."""
        ir = self.ir
        inside = set(nodes)
        allowed = {t[0] for t in ir.inputs(fwd)} | {fwd}
        for n in nodes:
            for src, _ in ir.inputs(n):
                if src not in inside and src not in allowed and not self.is_gradient_node(src) \
                        and ir.op(src) != "Const":
                    return False
        producers = self.receivers([t[0] for t in ir.inputs(fwd)])
        for n in nodes:
            for dst, _ in ir.consumers(n):
                if dst in inside:
                    continue
                for owner in self.owners_downstream(dst):
                    if owner not in producers:
                        return False
        return True

    def receivers(self, nodes) -> set[str]:
        """The forward ops whose gradient scopes receive the gradient w.r.t. the
        outputs of ``nodes``: the nodes themselves, and past ops whose gradient
        hands the incoming gradient on unchanged (Identity, Add, BiasAdd's
        input, a gather's IndexedSlices values …) their producers."""
        ir = self.ir
        res: set[str] = set()
        stack = list(nodes)
        while stack:
            p = stack.pop()
            if p not in res:
                res.add(p)
                if ir.op(p) in _PASS_THROUGH:
                    stack.extend(t[0] for t in ir.inputs(p))
                elif ir.op(p) in _PASS_FIRST and ir.inputs(p):
                    stack.append(ir.inputs(p)[0][0])
        return res

    def owners_downstream(self, name: str, limit: int = 64) -> set[str]:
        """Forward ops whose gradient scopes receive what ``name`` computes,
        looking through un-owned gradient nodes (AddN aggregation, tuple
        Identities); empty once the gradient subgraph is left."""
        owners: set[str] = set()
        stack, seen = [name], set()
        while stack and len(seen) < limit:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            o = self.owner.get(n)
            if o is not None:
                owners.add(o[1])
            elif self.is_gradient_node(n):
                stack.extend(d for d, _ in self.ir.consumers(n))
        return owners


def built_name(gp: str, x: str) -> str:
    """The scratch name of the op whose spliced scope is ``<gp>/<x>_grad``: ``x``
    spells it in full (``Log/graphfix/GF006/Log``) or, shortened, relative to
    the splice's scope (``Log``)."""
    scope = gp.rsplit("/", 1)[0]
    return x if x.startswith(scope + "/") else f"{scope}/{x}"


def spliced_owner(ir, name: str) -> tuple[str | None, bool]:
    """For a node of a spliced gradient: (the forward op whose scope holds it,
    False), or (None, True) for the splice's upstream-gradient Identity
    (``…/grad/grad_ys_N``); (None, False) for any other node."""
    gp = spliced_prefix(name)
    if gp is None:
        return None, False
    rest = name[len(gp) + 1:]
    if rest.startswith("grad_ys_"):
        return None, True
    i = rest.find("_grad/")
    if i <= 0:
        return None, False
    return _resolve(ir, gp, built_name(gp, rest[:i]), ir.renamed), False


def _resolve(ir, gp: str, built: str, aliases: dict[str, str]) -> str:
    """The IR node now carrying the op a spliced scope was built for."""
    seen = 0
    name = built
    while name in aliases and seen < 64:  # renamed in this session (graphfix.gradients records it)
        name = aliases[name]
        seen += 1
    if name in ir:
        return name
    # Loaded from a file: a guard op that is gone took the name of the op it
    # replaced, the anchor of its scope (``<anchor>/graphfix/<CODE>/…``).
    scope = gp.rsplit("/", 1)[0]
    anchor = scope.rsplit("/graphfix/", 1)[0]
    if built.startswith(scope + "/") and anchor in ir:
        return anchor
    return name


def ancestors_of(ir, tensors) -> set[str]:
    """Nodes that the given tensors depend on (data and control), the producers included."""
    res: set[str] = set()
    for t in tensors:
        node = t.rsplit(":", 1)[0]
        if node in ir and node not in res:
            res.add(node)
            res |= nx.ancestors(ir.g, node)
    return res
