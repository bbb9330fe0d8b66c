"""Analyses over a GraphIR.  :class:`Facts` computes each one lazily, once
per IR version, and every rule shares them."""
from __future__ import annotations

import functools

from graphfix.analysis import controlflow, emptiness, gradpath, loss, ranges


class Facts:
    """Lazily computed, cached analysis results for one version of an IR."""

    def __init__(self, ir, losses=None):
        self.ir = ir
        self.version = ir.version
        self._given_losses = list(losses or [])

    @functools.cached_property
    def _losses(self):
        return loss.find_losses(self.ir, self._given_losses)

    @property
    def losses(self) -> list[str]:
        return self._losses[0]

    @property
    def loss_source(self) -> str:
        return self._losses[1]

    @functools.cached_property
    def seeds(self) -> list[tuple[str, str]]:
        return loss.gradient_seeds(self.ir)

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
    def empty(self) -> set[tuple[str, int]]:
        return emptiness.may_be_empty(self.ir)

    @functools.cached_property
    def in_loop(self) -> set[str]:
        return controlflow.loop_nodes(self.ir)

    @functools.cached_property
    def _by_op(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for name in self.ir.names():
            index.setdefault(self.ir.op(name), []).append(name)
        return index

    def nodes_of(self, *ops: str) -> list[str]:
        """Nodes whose op is one of ``ops``, in graph order."""
        if len(ops) == 1:
            return list(self._by_op.get(ops[0], ()))
        res = [n for op in ops for n in self._by_op.get(op, ())]
        return sorted(res, key=self.ir.order.__getitem__)

    @functools.cached_property
    def ranges(self) -> ranges.Ranges:
        return ranges.Ranges(self.ir)
