"""A function body (``FunctionDef``) as a GraphDef of its own: arguments as
placeholders, the return values as its outputs.  The numeric analysis reads
a functional ``If``/``PartitionedCall`` through it, and the rules check each
body on it (:mod:`graphfix.engine.functions`).

No TensorFlow import: the function's ``node:output_arg:index`` inputs are
mapped to flat output indices with the registry's table of ops that have
several output args (:data:`graphfix.core.optables.OUTPUT_ARGS`).
"""
from __future__ import annotations

from graphfix.analysis.funclib import reachable
from graphfix.core.optables import OUTPUT_ARGS
from graphfix.core.tfimport import protos


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
        args = OUTPUT_ARGS.get(ops.get(node, ""), ())
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
