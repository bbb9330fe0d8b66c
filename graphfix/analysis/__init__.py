"""Analyses over a GraphIR.  :class:`Facts` computes each one lazily, once
per IR version, and every rule shares them.  After an edit, the facts of the
new version start from the previous version's where an analysis can be
updated from what the edit touched (:meth:`GraphIR.changes_since`): the
op index, the gradient scopes, the numeric values and the provenance facts
(which are computed on demand, for what the rules ask about, and after an
edit forgotten only downstream of the touched nodes); the others are
computed again on demand."""
from __future__ import annotations

import bisect
import functools

from graphfix.analysis import controlflow, gradpath, loss, numeric, ranges
from graphfix.analysis.reach import Reach


class Facts:
    """Lazily computed, cached analysis results for one version of an IR."""

    def __init__(self, ir, losses=None, pinned: "Facts | None" = None, previous: "Facts | None" = None,
                 no_gradients: bool = False):
        self.ir = ir
        self.version = ir.version
        self._given_losses = list(losses or [])
        if no_gradients:
            # a working copy whose gradient scopes are to be regenerated, not
            # patched: the analyses see no gradient subgraph
            self.__dict__["grad_scopes"] = gradpath.GradScopes(ir, [])
        if pinned is not None:
            # The losses and gradient calls of the graph as it was read: a
            # guard spliced into the gradient subgraph must not make them look
            # different (and, say, an evaluation metric look like a loss).
            self.__dict__["_losses"] = pinned._losses
            self.__dict__["seeds"] = pinned.seeds
        if previous is not None and previous.ir is ir and pinned is not None:
            self._carry(previous)

    def _carry(self, prev: "Facts") -> None:
        """Update what ``prev`` (an earlier version of the same IR, with the
        same pinned seeds) computed, where the edits since are known."""
        touched = self.ir.changes_since(prev.version)
        if touched is None:
            return
        done = prev.__dict__
        if "grad_scopes" in done:
            # handed over too: its tables are reused
            self.__dict__["grad_scopes"] = done.pop("grad_scopes").updated(self.ir, touched, handover=True)
        if "numeric" in done:
            num = done.pop("numeric")  # handed over, as the op index below
            if num.carry(touched):
                self.__dict__["numeric"] = num
                if "ranges" in done:
                    rng = done.pop("ranges")
                    rng.carry(touched, num)
                    self.__dict__["ranges"] = rng
        if "_learned" in done:
            learned = done.pop("_learned")
            learned.carry(touched)
            self.__dict__["_learned"] = learned
        if "_by_op" in done:
            # handed over: ``prev``, if still asked, indexes the IR again
            op_of, by_op = done.pop("_op_of", None), done.pop("_by_op")
            self.__dict__["_op_of"], self.__dict__["_by_op"] = _update_by_op(self.ir, op_of, by_op, touched)

    @functools.cached_property
    def _losses(self):
        return loss.find_losses(self.ir, self._given_losses, None if self._given_losses else self.seeds)

    @property
    def losses(self) -> list[str]:
        return self._losses[0]

    @functools.cached_property
    def seeds(self) -> list[tuple[str, str]]:
        return loss.gradient_seeds(self.ir, self.nodes_of("Fill"))

    @functools.cached_property
    def grad_scopes(self) -> gradpath.GradScopes:
        return gradpath.GradScopes(self.ir, [gp for gp, _ in self.seeds])

    @functools.cached_property
    def loss_ancestors(self) -> set[str] | None:
        """Nodes the losses depend on, or None when no loss is known (then
        the whole graph counts)."""
        if not self.losses:
            return None
        return gradpath.ancestors_of(self.ir, self.losses)

    def feeds_loss(self, name: str) -> bool:
        anc = self.loss_ancestors
        if anc is None:
            return not self.grad_scopes.is_gradient_node(name)
        return name in anc and not self.grad_scopes.is_gradient_node(name)

    @functools.cached_property
    def numeric(self) -> numeric.Numeric:
        """The numeric abstract interpretation of this IR version."""
        return numeric.Numeric(self.ir)

    def may_be_empty(self, t) -> bool:
        return self.numeric.value(t).empty

    @property
    def gradient_taken(self) -> bool:
        """A gradient is computed in this graph (a ``tf.gradients`` subgraph),
        or the user named the loss to differentiate (``--loss``)."""
        return bool(self.seeds) or bool(self._given_losses)

    @functools.cached_property
    def _learned(self) -> Reach:
        """``_learned(n)``: a variable feeds ``n`` (a gradient can flow back from it)."""
        ir = self.ir
        return Reach(ir, lambda n: ir.op(n) in ranges.VARIABLE_OPS, back=False)

    def on_gradient_path(self, name: str) -> bool:
        """``name``'s gradient is computed: in a training graph it has a
        gradient scope (or is a guard graphfix built on one); with only
        ``--loss``, it feeds the loss (the user differentiates it, maybe with
        respect to the inputs)."""
        if not self.gradient_taken or self.grad_scopes.is_gradient_node(name):
            return False
        if self.seeds:
            return self._learned(name) and (self.grad_scopes.has_scope(name) or "/graphfix/" in name)
        return self.feeds_loss(name)

    def nan_reaches_loss(self, t) -> bool:
        """A NaN in tensor ``t`` flows on to a loss (or, with no loss known, to
        a sink): followed forward through every consumer whose value may be
        NaN, stopping where the analysis shows a guard removes it."""
        return self._reaches_loss(t, lambda v: v.nan)

    def nonfinite_reaches_loss(self, t) -> bool:
        """Like :meth:`nan_reaches_loss`, for a NaN or an infinity."""
        return self._reaches_loss(t, lambda v: not v.finite)

    def _reaches_loss(self, t, bad) -> bool:
        num = self.numeric
        losses = {x.rsplit(":", 1)[0] for x in self.losses}
        ir = self.ir
        stack, seen = [t], {t}
        while stack:
            cur = stack.pop()
            if cur[0] in losses:
                return True
            cons = ir.consumers(cur[0], cur[1])
            if not cons and not losses and not self.grad_scopes.is_gradient_node(cur[0]):
                return True
            for dst, _ in cons:
                if self.grad_scopes.is_gradient_node(dst):
                    continue
                num.value((dst, 0))
                for k in range(len(num._vals[dst])):
                    nxt = (dst, k)
                    if nxt not in seen and bad(num.value(nxt)):
                        seen.add(nxt)
                        stack.append(nxt)
        return False

    @functools.cached_property
    def in_loop(self) -> set[str]:
        if not self.nodes_of("Enter", "RefEnter"):  # no v1 while loop (the op index is kept across edits)
            return set()
        return controlflow.loop_nodes(self.ir)

    @functools.cached_property
    def _by_op(self) -> dict[str, list[str]]:
        """Op -> its nodes in output order.  Updated across edits with a
        ``_op_of`` beside it (node -> (op, place when indexed)), made at the
        first update: a check, which edits nothing, does without."""
        ir = self.ir
        index: dict[str, list[str]] = {}
        for name, op in ir.op_table().items():
            index.setdefault(op, []).append(name)
        return index

    def nodes_of(self, *ops: str) -> list[str]:
        """Nodes whose op is one of ``ops``, in graph order."""
        if len(ops) == 1:
            return list(self._by_op.get(ops[0], ()))
        res = [n for op in ops for n in self._by_op.get(op, ())]
        return sorted(res, key=self.ir.order.__getitem__)

    @functools.cached_property
    def ranges(self) -> ranges.Ranges:
        return ranges.Ranges(self.ir, self.numeric)


def _update_by_op(ir, op_of: dict[str, tuple[str, float]] | None, by_op: dict[str, list[str]], touched: set[str]):
    """The op index after edits that touched only ``touched``, updated in
    place (the caller hands it over).  ``op_of`` keeps each node's op and its
    place when indexed, so a removed node is found by bisection; without it
    (the first update) it is made here, the touched nodes filtered out of
    their lists (an untouched node keeps its place)."""
    copied: set[str] = set()

    def own(op):
        copied.add(op)
        return by_op.setdefault(op, [])

    order = ir.order
    if op_of is None:
        op_of = {}
        for op, lst in by_op.items():
            if not touched.isdisjoint(lst):
                lst[:] = [n for n in lst if n not in touched]
                copied.add(op)
            for n in lst:
                op_of[n] = (op, order[n])
    else:
        placed = {name: op_of[name][1] for name in touched if name in op_of}
        for name in touched:  # out first, all of them (by their old places), then the live ones
            old = op_of.pop(name, None)
            if old is not None:
                lst = own(old[0])
                del lst[bisect.bisect_left(lst, old[1], key=lambda n: placed[n] if n in placed else op_of[n][1])]
    for name in sorted(touched):
        if name in ir:
            op_of[name] = (ir.op(name), order[name])
            bisect.insort(own(op_of[name][0]), name, key=lambda n: op_of[n][1])
    for op in copied:
        if not by_op[op]:
            del by_op[op]
    return op_of, by_op
