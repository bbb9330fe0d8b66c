"""v1 control flow: which nodes sit inside a while-loop frame (between
``Enter`` and ``Exit``), where a ``cond`` guard built outside the frame
cannot be used."""
from __future__ import annotations


def loop_nodes(ir) -> set[str]:
    """Nodes reachable from an ``Enter`` without passing an ``Exit``."""
    g = ir.g
    start = [n for n in g.nodes if g.nodes[n]["node"].op in ("Enter", "RefEnter")]
    seen = set(start)
    stack = list(start)
    while stack:
        n = stack.pop()
        if g.nodes[n]["node"].op in ("Exit", "RefExit"):
            continue
        for dst in g.successors(n):
            if dst not in seen:
                seen.add(dst)
                stack.append(dst)
    return {n for n in seen if g.nodes[n]["node"].op not in ("Exit", "RefExit")}
