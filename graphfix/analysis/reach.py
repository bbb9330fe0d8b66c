"""Per-node facts of the form "a source node feeds this one through data
inputs" (a variable, a random op…), computed on demand for the nodes asked
about and their ancestors only, and kept across edits.

A memo entry of a node is computed from the entries of its producers, so
after an edit only the touched nodes and what they feed can change:
:func:`forget_downstream` drops exactly those entries, walking from the
touched nodes to their consumers as long as the consumers hold an entry (a
node without one has no entry downstream of it on that path, except where an
entry was decided by another producer alone, which the edit did not change).

While-loop back edges (an input read from a ``NextIteration``) are not
followed: what such an input brings is a constant of the fact, the value a
topological pass (:meth:`GraphIR.topo_order`, which ignores those edges)
sees for a producer it has not reached yet.
"""
from __future__ import annotations

from typing import Callable

BACK = "NextIteration"  # the op whose outgoing edges GraphIR.topo_order ignores


class Reach:
    """``reach(name)``: does a node for which ``is_source`` holds feed
    ``name`` (or is ``name`` one)?  Memoised per node; see the module docstring."""

    def __init__(self, ir, is_source: Callable[[str], bool], back: bool):
        self.ir = ir
        self._is_source = is_source
        self._back = back
        self.memo: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        memo = self.memo
        r = memo.get(name)
        if r is not None:
            return r
        ir, is_source, back = self.ir, self._is_source, self._back
        stack = [name]
        while stack:
            n = stack[-1]
            if n in memo:
                stack.pop()
                continue
            if is_source(n):
                memo[n] = True
                stack.pop()
                continue
            res = False
            pending = False
            for s in ir.producers(n):
                v = back if ir.op(s) == BACK else memo.get(s)
                if v is None:
                    stack.append(s)
                    pending = True
                elif v:
                    res = True
                    break
            if res or not pending:
                memo[n] = res
                stack.pop()
        return memo[name]

    def carry(self, touched) -> None:
        """Forget what the edits that touched ``touched`` may have changed."""
        forget_downstream(self.ir, self.memo, touched)


def forget_downstream(ir, memo: dict, touched) -> None:
    """Drop from ``memo`` (node -> something computed from its producers'
    entries) the touched nodes and every node with an entry that they feed
    through nodes with entries."""
    stack = []
    for n in touched:
        memo.pop(n, None)
        if n in ir:
            stack.append(n)
    while stack:
        for dst in ir.successors(stack.pop()):
            if dst in memo:
                del memo[dst]
                stack.append(dst)
