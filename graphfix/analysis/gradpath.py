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


def gated(names) -> bool:
    """TensorFlow gated these gradient nodes (``gate_gradients``, an
    optimizer's GATE_OP): an op's input gradients are released together
    through ``…_grad/tuple/control_dependency``.  A regenerated gradient is
    gated as the old one was, which keeps a ref variable's apply op from
    running before every gradient that reads the variable."""
    return any("/tuple/control_dependency" in n for n in names)


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
        self._real_pre = tuple(p + "/" for p in real)
        self.scopes: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.built_as: dict[tuple[str, str], str] = {}  # (prefix, owner) -> the op's name when it was built
        self.members: set[str] = set()
        self.by_op: dict[str, list[str]] = defaultdict(list)  # forward op -> prefixes with a scope of it
        self.owner: dict[str, tuple[str, str]] = {}  # gradient node -> (prefix, forward op whose scope holds it)
        # Spliced scopes, grouped by (prefix, the op's name when built): a
        # group's owner follows renames, so updates re-resolve groups, not nodes.
        self._groups: dict[tuple[str, str], list[str]] = {}
        self._resolved: dict[tuple[str, str], str] = {}
        # name -> the groups whose owner a change of that name (its renaming,
        # its removal or addition) may move; the renames seen when resolved
        self._dep_of: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._aliases: dict[str, str] = dict(ir.renamed)
        self._spliced: dict[str, int] = {}  # spliced prefix -> its member count
        self.prefixes = list(real)
        if not real:
            return
        pre = self._real_pre
        for name in ir.names():
            if name.startswith(pre) or "/graphfix/" in name:  # what _classify can place
                self._add(name)
        self.prefixes = sorted(set(real) | set(self._spliced), key=len, reverse=True)

    def _classify(self, name: str):
        """(prefix, the scope's op name when built or None, spliced?) or None for a non-member."""
        gp = spliced_prefix(name)
        spliced = gp is not None
        if not spliced:
            if not name.startswith(self._real_pre):
                return None
            gp = next(p for p, pre in zip(self._real, self._real_pre) if name.startswith(pre))
        rest = name[len(gp) + 1:]
        i = rest.find("_grad/")
        if i <= 0:
            return gp, None, spliced
        return gp, (built_name(gp, rest[:i]) if spliced else rest[:i]), spliced

    def _add(self, name: str) -> None:
        """Index ``name`` (appended: the constructor adds in graph order)."""
        c = self._classify(name)
        if c is None:
            return
        gp, built, spliced = c
        self.members.add(name)
        if spliced:
            self._spliced[gp] = self._spliced.get(gp, 0) + 1
        if built is None:
            return
        if spliced:
            group = (gp, built)
            if group not in self._groups:
                self._groups[group] = []
                self._resolved[group] = self._resolve_group(self.ir, group)
            self._groups[group].append(name)
            fwd = self._resolved[group]
        else:
            fwd = built
        key = (gp, fwd)
        nodes = self.scopes.get(key)
        if nodes is None:
            nodes = self.scopes[key] = []
            self.by_op[fwd].append(gp)
            self.built_as[key] = built
        elif nodes:  # one key (and op name) object per scope, not one per member
            key = self.owner.get(nodes[0], key)
        nodes.append(name)
        self.owner[name] = key

    def _resolve_group(self, ir, group: tuple[str, str]) -> str:
        """The owner of a spliced group, noting the names the answer depends on."""
        deps: list[str] = []
        fwd = _resolve(ir, group[0], group[1], ir.renamed, deps)
        for name in deps:
            self._dep_of[name].add(group)
        return fwd

    def updated(self, ir, touched: set[str], handover: bool = False) -> "GradScopes":
        """This index for ``ir`` after edits that added, removed or rewired
        only ``touched`` (see GraphIR.changes_since), equal to a fresh one;
        the cost follows the edits and graphfix's spliced scopes (whose owners
        are resolved again, per group), not the graph.  With ``handover`` the
        caller gives this index up: its tables are reused, not copied."""
        new = object.__new__(GradScopes)
        new.ir = ir
        new._real, new._real_pre = self._real, self._real_pre
        if not self._real:
            GradScopes.__init__(new, ir, [])
            return new
        order = ir.order
        # the groups whose owner may have moved: those a touched or newly renamed name
        # leads to (None: all of them)
        renamed, seen = ir.renamed, self._aliases
        moved: set | None = None
        if handover and all(k in renamed for k in seen):
            moved = set()
            for name in (*touched, *(k for k, v in renamed.items() if seen.get(k) != v)):
                moved |= self._dep_of.get(name, set())
        new._dep_of = self._dep_of if handover else defaultdict(set, {k: set(v) for k, v in self._dep_of.items()})
        new._aliases = dict(renamed)
        if handover:
            new.scopes, new.built_as, new.members, new.by_op = self.scopes, self.built_as, self.members, self.by_op
            new.owner, new._groups, new._resolved, new._spliced = self.owner, self._groups, self._resolved, \
                self._spliced
        else:
            new.scopes = defaultdict(list, self.scopes)  # lists are copied before they change
            new.built_as = dict(self.built_as)
            new.members = set(self.members)
            new.by_op = defaultdict(list, self.by_op)
            new.owner = dict(self.owner)
            new._groups = dict(self._groups)
            new._resolved = dict(self._resolved)
            new._spliced = dict(self._spliced)
        copied: set = set()  # scope keys whose lists were copied (and may have changed)
        dirty: set = set()  # groups whose members changed

        def own_list(table, key):
            if (table is new.scopes and key not in copied) or (table is new._groups and key not in dirty):
                table[key] = list(table.get(key, ()))
                (copied if table is new.scopes else dirty).add(key)
            return table[key]

        live = [n for n in touched if n in ir]
        for name in touched:  # out first, all of them: the lists stay sortable by the live order
            if name not in new.members:  # still the old members: nothing is added before this loop ends
                continue
            new.members.discard(name)
            gp, built, spliced = self._classify(name)
            if spliced:
                new._spliced[gp] -= 1
                if not new._spliced[gp]:
                    del new._spliced[gp]
                if built is not None:
                    own_list(new._groups, (gp, built)).remove(name)
            key = new.owner.pop(name, None)
            if key is not None:
                own_list(new.scopes, key).remove(name)
        for name in sorted(live, key=order.__getitem__):
            c = self._classify(name)
            if c is None:
                continue
            gp, built, spliced = c
            new.members.add(name)
            if spliced:
                new._spliced[gp] = new._spliced.get(gp, 0) + 1
                if built is not None:
                    bisect.insort(own_list(new._groups, (gp, built)), name, key=order.__getitem__)
            elif built is not None:
                bisect.insort(own_list(new.scopes, (gp, built)), name, key=order.__getitem__)
                new.owner[name] = (gp, built)
        # Spliced groups: resolve each again (a rename or a removal may move
        # its owner) and move the ones that changed, or whose members did.
        for group in list(new._groups):
            if moved is not None and group not in moved and group not in dirty:
                continue  # nothing it depends on changed
            gp, built = group
            names = new._groups[group]
            if not names:
                del new._groups[group]
                new._resolved.pop(group, None)
                continue
            fwd = new._resolve_group(ir, group)
            old = new._resolved.get(group)
            if fwd == old and group not in dirty:
                continue
            new._resolved[group] = fwd
            for name in names:
                key = new.owner.get(name)
                if key is not None:
                    own_list(new.scopes, key).remove(name)
                bisect.insort(own_list(new.scopes, (gp, fwd)), name, key=order.__getitem__)
                new.owner[name] = (gp, fwd)
        by_fwd: dict[str, set[str]] = defaultdict(set)
        for gp, fwd in copied:
            by_fwd[fwd].add(gp)
        for fwd, gps in by_fwd.items():
            keys = [(gp, fwd) for gp in set(new.by_op.get(fwd, ())) | gps]  # the old entry, until replaced below
            kept = []
            for key in keys:
                nodes = new.scopes.get(key)
                if nodes:
                    kept.append(key)
                    c = self._classify(nodes[0])
                    new.built_as[key] = c[1]
                else:
                    new.scopes.pop(key, None)
                    new.built_as.pop(key, None)
            if kept:
                new.by_op[fwd] = [k[0] for k in sorted(kept, key=lambda k: order[new.scopes[k][0]])]
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


def _resolve(ir, gp: str, built: str, aliases: dict[str, str], deps: list | None = None) -> str:
    """The IR node now carrying the op a spliced scope was built for; ``deps``
    gets the names whose renaming or presence the answer depends on."""
    seen = 0
    name = built
    if deps is not None:
        deps.append(name)
    while name in aliases and seen < 64:  # renamed in this session (graphfix.patch.gradients records it)
        name = aliases[name]
        seen += 1
        if deps is not None:
            deps.append(name)
    if name in ir:
        return name
    # Loaded from a file: a guard op that is gone took the name of the op it
    # replaced, the anchor of its scope (``<anchor>/graphfix/<CODE>/…``).
    scope = gp.rsplit("/", 1)[0]
    anchor = scope.rsplit("/graphfix/", 1)[0]
    if deps is not None:
        deps.append(anchor)
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
            res |= ir.ancestors(node)
    return res
