"""``rewrite`` checks its own work before it writes.

A finding counts as fixed only when it is gone from the fixed graph:

* **forward** — matching every selected rule again on the fixed graph no
  longer finds it (the pass manager's last round is that re-match: it runs on
  the final graph and fixes nothing, see :func:`graphfix.engine.passes.run`);
* **on its gradient path** — the gradient scopes the repair made stale are
  gone, and every gradient scope of an op the repair replaced or created
  describes the op now in the graph (it reads only that op's inputs and
  outputs, never the unguarded value of the op it replaced).  Whatever
  consumes the gradients — the optimizer's ``Apply*`` ops after clipping or
  loss scaling — then reads the gradient of the fixed loss.

Otherwise the finding is reported not fixed with the reason, and ``rewrite``
exits 1.  The check only reads the IR and the gradient-scope index; it costs
a small fraction of the rewrite (bench/bench.py measures it).
"""
from __future__ import annotations

from graphfix.core.optypes import is_apply


def check_fixes(ir, scopes, findings, rematched: set[tuple[str, str]], ops_before=None, in_loop=()) -> None:
    """Demote every finding in ``findings`` marked fixed that is not (see module
    doc); ``ops_before``: each node's op in the graph as read; ``in_loop``: the
    nodes of while-loop frames (their gradient is regenerated under the old
    names, so a scope there is new whatever it is called)."""
    for f in findings:
        if not f.fixed:
            continue
        reason = _forward(f, rematched) or _gradient(ir, scopes, f, ops_before or {}, in_loop)
        edits = f.data.get("edits")
        if edits is not None:  # the report lists what is in the output, not what a later repair replaced
            f.new_nodes = sorted(n for n in f.new_nodes if n in ir)
        if reason:
            f.fixed = False
            f.note = f"not fixed: {reason}"


def _forward(f, rematched) -> str | None:
    if (f.code, f.node) in rematched:
        return f"{f.code} still matches {f.node} in the fixed graph"
    return None


def _gradient(ir, scopes, f, ops_before, in_loop=()) -> str | None:
    edits = f.data.get("edits") or []
    if not scopes.prefixes:
        return None  # no gradient subgraph: nothing to keep in step
    left = [n for e in edits for n in e["stale"] if n in ir]
    if left:
        return f"the old gradient {_scope_of(left[0])} is still in the graph{_readers(ir, left)}"
    ops = set()
    for e in edits:
        ops.update(e["region"])
        ops.update(e["outputs"])
        ops.update(n for n in e["added"] if n in ir and not scopes.is_gradient_node(n))
    ops.update(n for n in f.new_nodes if n in ir and not scopes.is_gradient_node(n))
    bad = scopes.stale(ops)
    for fwd in sorted(ops):
        # a scope left for an op whose name now carries another op (RealDiv -> DivNoNan)
        if fwd in ir and fwd in ops_before and ir.op(fwd) != ops_before[fwd] and fwd not in in_loop:
            for gp in scopes.by_op.get(fwd, ()):
                if "/graphfix/" in gp:
                    continue  # a gradient graphfix built, for the op as it is now
                made_by_tf = f"{gp}/{fwd}_grad/"  # not a gradient graphfix spliced in for the new op
                nodes = [n for n in scopes.scopes.get((gp, fwd), []) if n in ir and n.startswith(made_by_tf)]
                if nodes:
                    bad.setdefault(f"{gp}/{fwd}_grad (built for {ops_before[fwd]}, the node is now {ir.op(fwd)})",
                                   nodes)
    if bad:
        label = sorted(bad)[0]
        return (f"the gradient scope {label} differentiates an op that is no longer in the graph"
                f"{_readers(ir, bad[label])}")
    return None


def _scope_of(name: str) -> str:
    i = name.find("_grad/")
    return name[:i + 5] if i > 0 else name


def _readers(ir, nodes) -> str:
    """', read by the train op's Apply ops X, Y' when they depend on ``nodes``."""
    reach: set[str] = set()
    for n in nodes:
        if n in ir and n not in reach:
            reach |= ir.descendants(n)
    applies = sorted(n for n in reach if is_apply(ir.op(n)))
    if not applies:
        return ""
    more = f" and {len(applies) - 3} more" if len(applies) > 3 else ""
    return f", and {', '.join(applies[:3])}{more} still read it"


def record_verify(report, result) -> None:
    """``rewrite --verify``: put ``graphfix verify``'s verdict in the report.
    When it fails, no finding is reported fixed: each says which check failed."""
    failed = []
    if not result.normal_ok:
        bad = [m for t in result.normal for m in t["mismatched"]] or ["no normal feed compared"]
        failed.append("normal feeds: the fixed graph trains differently (" + ", ".join(bad[:4])
                      + (", …" if len(bad) > 4 else "") + ")")
    if not result.trigger_ok:
        bad = [f"{t['feed']}: {'; '.join(t['fixed'] or [t.get('fixed_error', '')])}" for t in result.trigger
               if not t.get("skipped") and not t["fixed_finite"]]
        failed.append("trigger feeds: the fixed graph is not finite (" + " | ".join(bad[:3])
                      + (" | …" if len(bad) > 3 else "") + ")")
    report.verify = {"ok": result.ok, "failed": failed}
    if result.ok:
        return
    for f in report.findings:
        if f.fixed:
            f.fixed = False
            f.note = f"not fixed: verify failed ({failed[0].split(':')[0]})"
