"""Hazards inside TF2 functional control flow (``If``/``While``/``PartitionedCall``
bodies in the GraphDef's function library).

The ``check`` path: a graph built with control flow v2 keeps its branch and
loop bodies as ``FunctionDef``s; each function reachable from the graph is
analysed as a graph of its own (arguments standing as placeholders, return
values as the losses) and its hazards are reported.  ``rewrite`` repairs them
with :mod:`graphfix.funcpatch`.

No TensorFlow import: the function's ``node:output_arg:index`` inputs are
mapped to flat output indices with a small table of ops that have several
output args (enough for the analyses, which only need the data flow).
"""
from __future__ import annotations

from graphfix.funclib import reachable
from graphfix.tfimport import protos

# Ops with several output args: their names in order (each of size 1).
_OUTPUT_ARGS = {
    "Switch": ("output_false", "output_true"), "RefSwitch": ("output_false", "output_true"),
    "Merge": ("output", "value_index"), "RefMerge": ("output", "value_index"),
    "Unique": ("y", "idx"), "UniqueV2": ("y", "idx"), "UniqueWithCounts": ("y", "idx", "count"),
    "ListDiff": ("out", "idx"), "TopKV2": ("values", "indices"), "TopK": ("values", "indices"),
    "SoftmaxCrossEntropyWithLogits": ("loss", "backprop"),
    "SparseSoftmaxCrossEntropyWithLogits": ("loss", "backprop"),
    "FusedBatchNorm": ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"),
    "FusedBatchNormV2": ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"),
    "FusedBatchNormV3": ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2",
                         "reserve_space_3"),
}

def reachable_functions(graph_def) -> list:
    """FunctionDefs the graph's nodes call (through func attrs or as ops), transitively, in library order."""
    lib = {f.signature.name: f for f in graph_def.library.function}
    if not lib:
        return []
    seen = reachable(graph_def.node, lib)
    return [f for f in graph_def.library.function if f.signature.name in seen]


def _flat(ref: str, ops: dict[str, str]) -> str:
    """``node:arg:idx`` -> ``node:flat``; ``^node`` and bare argument names unchanged."""
    if ref.startswith("^"):
        return ref
    parts = ref.split(":")
    if len(parts) == 3 and parts[2].isdigit():
        node, arg, idx = parts[0], parts[1], int(parts[2])
        args = _OUTPUT_ARGS.get(ops.get(node, ""), ())
        offset = args.index(arg) if arg in args else 0
        flat = offset + idx
        return node if flat == 0 else f"{node}:{flat}"
    return ref


def function_graph(fdef):
    """(GraphDef, return tensors) of one function body."""
    gd = protos().graph_pb2.GraphDef()
    for arg in fdef.signature.input_arg:
        n = gd.node.add()
        n.name = arg.name
        n.op = "Placeholder"
        n.attr["dtype"].type = arg.type or 1
    ops = {n.name: n.op for n in fdef.node_def}
    for nd in fdef.node_def:
        n = gd.node.add()
        n.CopyFrom(nd)
        del n.input[:]
        n.input.extend(_flat(s, ops) for s in nd.input)
    rets = []
    for out in fdef.signature.output_arg:
        r = fdef.ret.get(out.name)
        if r:
            t = _flat(r, ops)
            rets.append(t if ":" in t else t + ":0")
    return gd, rets


def check_functions(graph_def, rules, names=None, values=None) -> list:
    """Findings for hazards inside the functions the graph calls (only those
    in ``names`` if given; ``values``: what the call sites pass each argument,
    from :func:`graphfix.funclib.boundary_values`)."""
    from graphfix.ir import GraphIR
    from graphfix.passes import Context, run

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
