"""Hazards inside TF2 functional control flow (``If``/``While``/``PartitionedCall``
bodies in the GraphDef's function library).

The ``check`` path: a graph built with control flow v2 keeps its branch and
loop bodies as ``FunctionDef``s; each function reachable from the graph is
analysed as a graph of its own (arguments standing as placeholders, return
values as the losses) and its hazards are reported.  ``rewrite`` repairs them
with :mod:`graphfix.engine.funcpatch`.

A body becomes a graph of its own with :mod:`graphfix.analysis.bodies`.
"""
from __future__ import annotations

from graphfix.analysis.bodies import function_graph, reachable_functions
from graphfix.core.ir import GraphIR
from graphfix.engine.passes import Context, run


def check_functions(graph_def, rules, names=None, values=None) -> list:
    """Findings for hazards inside the functions the graph calls (only those
    in ``names`` if given; ``values``: what the call sites pass each argument,
    from :func:`graphfix.analysis.funclib.boundary_values`)."""
    findings = []
    fdefs = reachable_functions(graph_def) if names is None else \
        [f for f in graph_def.library.function if f.signature.name in names]
    for fdef in fdefs:
        fn = fdef.signature.name
        try:
            gd, rets = function_graph(fdef)
            ir = GraphIR(gd, copy=False, arg_values=(values or {}).get(fn))
            ctx = Context(ir, losses=[r for r in rets if r.rsplit(":", 1)[0] in ir])
            found, _ = run(ctx, rules, apply=False)
        except Exception:  # noqa: BLE001 — a body the analyses cannot read is skipped, never fatal
            continue
        for f in found:
            f.data = dict(f.data or {}, function=fn, function_node=f.node)
            f.node = f"{fn}/{f.node}"
            f.fixed = False
            f.message = f"{f.message} (inside function {fn})"
            findings.append(f)
    return findings
