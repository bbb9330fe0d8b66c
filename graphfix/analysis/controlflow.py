"""v1 control flow: which nodes sit inside a while-loop frame (between
``Enter`` and ``Exit``), where a ``cond`` guard built outside the frame
cannot be used."""
from __future__ import annotations


def loop_nodes(ir) -> set[str]:
    """Nodes reachable from an ``Enter`` without passing an ``Exit``."""
    start = [n for n in ir.order if ir.op(n) in ("Enter", "RefEnter")]
    seen = set(start)
    stack = list(start)
    while stack:
        n = stack.pop()
        if ir.op(n) in ("Exit", "RefExit"):
            continue
        for dst in ir.successors(n):
            if dst not in seen:
                seen.add(dst)
                stack.append(dst)
    return {n for n in seen if ir.op(n) not in ("Exit", "RefExit")}
