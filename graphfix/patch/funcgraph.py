"""A ``FunctionDef`` as a graph of its own, and back.

The rules run on a :class:`~graphfix.core.ir.GraphIR` of a GraphDef.  A function
body (a branch of ``If``, the body of ``While``, the callee of
``PartitionedCall``) is turned into one: every argument becomes a
``Placeholder`` named like the argument, the body's ``node:out_arg:index``
inputs become flat ``node:k`` references, and every return value becomes an
``Identity`` sink (``graphfix_ret_<i>``) so a rule can replace the tensor it
returns.  :func:`to_function_def` turns the (guarded) graph back into a
``FunctionDef`` with the same signature under a new name: nodes the rules did
not touch keep their NodeDef exactly (original input spellings included),
new nodes get their inputs spelled with the producer's output-arg names, as
TensorFlow writes them.

Output-arg names come from TensorFlow's op registry (and from the callee's
signature for an op that is a library function), so this module is used on
the rewrite path only; ``check`` keeps the registry-free reading in
:mod:`graphfix.engine.functions`.
"""
from __future__ import annotations

from graphfix.core import tfimport
from graphfix.core.errors import GraphfixError
from graphfix.core.ir import parse_input
from graphfix.core.tfimport import protos

SINK = "graphfix_ret_"


def _output_args(nodedef, library) -> list[tuple[str, int]]:
    """``[(output arg name, number of tensors)]`` of ``nodedef``'s op."""
    if nodedef.op in library:
        return [(a.name, 1) for a in library[nodedef.op].signature.output_arg]
    op_def_registry = tfimport.module("tensorflow.python.framework.op_def_registry")

    op_def = op_def_registry.get(nodedef.op)
    if op_def is None:
        raise GraphfixError(f"op {nodedef.op!r} (node {nodedef.name!r} in a function body) is not registered")
    defaults = {a.name: a.default_value for a in op_def.attr if a.HasField("default_value")}

    def attr(key):
        return nodedef.attr[key] if key in nodedef.attr else defaults[key]

    res = []
    for arg in op_def.output_arg:
        if arg.number_attr:
            res.append((arg.name, attr(arg.number_attr).i))
        elif arg.type_list_attr:
            res.append((arg.name, len(attr(arg.type_list_attr).list.type)))
        else:
            res.append((arg.name, 1))
    return res


class _Refs:
    """Translates between ``node:out_arg:index`` and flat ``node:k`` spellings."""

    def __init__(self, nodes, args, library):
        self.nodes = nodes  # name -> NodeDef (body nodes)
        self.args = args
        self.library = library
        self._cache: dict[str, list[tuple[str, int]]] = {}

    def _args_of(self, node):
        if node not in self._cache:
            self._cache[node] = _output_args(self.nodes[node], self.library)
        return self._cache[node]

    def flat(self, ref: str) -> str:
        if ref.startswith("^"):
            return ref
        parts = ref.split(":")
        if len(parts) == 1 or parts[0] in self.args:
            return parts[0]
        if len(parts) == 2:  # already flat (not written by TensorFlow, but tolerated)
            return ref if parts[1] != "0" else parts[0]
        node, arg, idx = parts[0], parts[1], int(parts[2])
        if node not in self.nodes:
            raise GraphfixError(f"function body input {ref!r} names no node")
        offset = 0
        for name, count in self._args_of(node):
            if name == arg:
                k = offset + idx
                return node if k == 0 else f"{node}:{k}"
            offset += count
        raise GraphfixError(f"function body input {ref!r}: op {self.nodes[node].op} has no output {arg!r}")

    def structured(self, ref: str) -> str:
        if ref.startswith("^"):
            return ref
        node, k, _ = parse_input(ref)
        if node in self.args:
            return node
        if node not in self.nodes:
            raise GraphfixError(f"function body input {ref!r} names no node")
        offset = 0
        for name, count in self._args_of(node):
            if k < offset + count:
                return f"{node}:{name}:{k - offset}"
            offset += count
        raise GraphfixError(f"function body input {ref!r}: op {self.nodes[node].op} has no output {k}")


def to_graph_def(fdef, library):
    """``(GraphDef, sinks)`` for ``fdef``: ``sinks[i]`` is the name of the
    Identity node standing for the function's ``i``-th return value."""
    gd = protos().graph_pb2.GraphDef()
    args = {a.name for a in fdef.signature.input_arg}
    refs = _Refs({n.name: n for n in fdef.node_def}, args, library)
    for i, arg in enumerate(fdef.signature.input_arg):
        n = gd.node.add()
        n.name = arg.name
        n.op = "Placeholder"
        n.attr["dtype"].type = arg.type
        shapes = fdef.arg_attr[i].attr.get("_output_shapes") if i in fdef.arg_attr else None
        if shapes is not None and len(shapes.list.shape) == 1:
            n.attr["shape"].shape.CopyFrom(shapes.list.shape[0])
    for nd in fdef.node_def:
        n = gd.node.add()
        n.CopyFrom(nd)
        del n.input[:]
        n.input.extend(refs.flat(s) for s in nd.input)
    taken = {n.name for n in gd.node}
    sinks = []
    for i, out in enumerate(fdef.signature.output_arg):
        name = f"{SINK}{i}"
        if name in taken:
            raise GraphfixError(f"function {fdef.signature.name!r} already has a node named {name!r}")
        n = gd.node.add()
        n.name = name
        n.op = "Identity"
        n.attr["T"].type = out.type
        n.input.append(refs.flat(fdef.ret[out.name]))
        sinks.append(name)
    return gd, sinks


def to_function_def(fdef, graph_def, sinks, name: str, library):
    """``fdef`` with the body of ``graph_def`` (made by :func:`to_graph_def`
    and edited) under the new ``name``; same signature and attributes."""
    out = type(fdef)()
    out.CopyFrom(fdef)
    out.signature.name = name
    del out.node_def[:]
    out.ret.clear()
    args = {a.name for a in fdef.signature.input_arg}
    sink_set = set(sinks)
    body = {n.name: n for n in graph_def.node if n.name not in args and n.name not in sink_set}
    original = {n.name: n for n in fdef.node_def}
    refs = _Refs(body, args, library)
    for n in graph_def.node:
        if n.name not in body:
            continue
        nd = type(n)()
        nd.CopyFrom(n)
        del nd.input[:]
        nd.input.extend(refs.structured(s) for s in n.input)
        orig = original.get(n.name)
        out.node_def.add().CopyFrom(orig if orig is not None and orig == nd else nd)
    by_name = {n.name: n for n in graph_def.node}
    for i, arg in enumerate(fdef.signature.output_arg):
        out.ret[arg.name] = refs.structured(by_name[sinks[i]].input[0])
    for key, node in fdef.control_ret.items():
        if node not in body:
            raise GraphfixError(f"function {fdef.signature.name!r}: control output {node!r} was removed")
    return out
