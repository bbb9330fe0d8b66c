"""Building replacement subgraphs with TensorFlow in a scratch graph.

A rule describes its guard with ordinary TensorFlow calls on a
:class:`Builder`; the builder stands a placeholder in for every existing
tensor the guard reads and clones existing ops with their exact attributes,
so the ops on the taken path are the very ops of the original graph (same
kernels, same values).  The scratch graph is then exported and its nodes are
spliced into the IR with the placeholders replaced by the real tensors.
Building with TensorFlow itself (rather than writing NodeDefs by hand) gives
correct v1 ``cond`` plumbing (pivots, dead-branch constants) and lets
``tf.gradients`` differentiate the guard.
"""
from __future__ import annotations

import contextlib

from graphfix.errors import GraphfixError, UnsupportedOpError
from graphfix.ir import input_ref, parse_input, split_tensor
from graphfix.tfimport import tf as _tf

PLACEHOLDER_PREFIX = "graphfix_scratch_input"


@contextlib.contextmanager
def v1_control_flow():
    """Build ``tf.compat.v1.cond`` as Switch/Merge (what TF1 graphs hold)."""
    from tensorflow.python.ops import control_flow_util

    old = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
    try:
        yield
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = old


def output_types(nodedef) -> list[int]:
    """The DataType enum of every output of ``nodedef``, from TensorFlow's op registry."""
    from tensorflow.python.framework import op_def_registry

    op_def = op_def_registry.get(nodedef.op)
    if op_def is None:
        raise UnsupportedOpError(
            f"op {nodedef.op!r} (node {nodedef.name!r}) is not registered in this TensorFlow; "
            "load the library that defines it (tf.load_op_library) before running graphfix")
    defaults = {a.name: a.default_value for a in op_def.attr if a.HasField("default_value")}

    def attr(key):
        if key in nodedef.attr:
            return nodedef.attr[key]
        return defaults.get(key)

    types = []
    for arg in op_def.output_arg:
        if arg.number_attr:
            n = attr(arg.number_attr).i
            t = arg.type or attr(arg.type_attr).type
            types.extend([t] * n)
        elif arg.type_list_attr:
            types.extend(attr(arg.type_list_attr).list.type)
        elif arg.type_attr:
            types.append(attr(arg.type_attr).type)
        else:
            types.append(arg.type)
    return [t - 100 if t > 100 else t for t in types]


class Builder:
    """Builds ops in a scratch ``tf.Graph`` standing for parts of an IR."""

    def __init__(self, ir, graph):
        self.ir = ir
        self.graph = graph
        self.tf = _tf()
        self.inputs: dict[str, tuple[str, int]] = {}  # placeholder op name -> real tensor
        self._by_tensor: dict[tuple[str, int], object] = {}

    def dtype_of(self, tensor: tuple[str, int]):
        return self.tf.as_dtype(output_types(self.ir.node(tensor[0]))[tensor[1]])

    def shape_of(self, tensor: tuple[str, int]):
        shapes = self.ir.attr(tensor[0], "_output_shapes")
        if shapes is not None and len(shapes.list.shape) > tensor[1]:
            return self.tf.TensorShape(shapes.list.shape[tensor[1]])
        return None

    def input(self, tensor) -> object:
        """A placeholder standing for the existing tensor ``tensor`` ((node, out) or 'node:out')."""
        if isinstance(tensor, str):
            tensor = split_tensor(tensor)
        if tensor in self._by_tensor:
            return self._by_tensor[tensor]
        with self.graph.name_scope(None):
            ph = self.tf.compat.v1.placeholder(self.dtype_of(tensor), self.shape_of(tensor),
                                               name=f"{PLACEHOLDER_PREFIX}_{len(self.inputs)}")
        self.inputs[ph.op.name] = tensor
        self._by_tensor[tensor] = ph
        return ph

    def clone(self, name: str, inputs=None, op_name: str | None = None) -> list:
        """The op of IR node ``name`` re-created with the same attrs on ``inputs``
        (default: placeholders for its own inputs); returns its outputs."""
        nd = self.ir.node(name)
        if inputs is None:
            inputs = [self.input(t) for t in self.ir.inputs(name)]
        attrs = {k: v for k, v in nd.attr.items() if not k.startswith("_")}
        op = self.graph._create_op_internal(nd.op, list(inputs), name=op_name or name.rsplit("/", 1)[-1],
                                            attrs=attrs)
        return list(op.outputs)


def export_nodes(builder: Builder, extra_map: dict[str, tuple[str, int]] | None = None, device: str = "",
                 colocation=None) -> list:
    """NodeDefs of everything built, placeholders replaced by the real tensors."""
    mapping = dict(builder.inputs)
    mapping.update(extra_map or {})
    gd = builder.graph.as_graph_def()
    out = []
    for n in gd.node:
        if n.name in mapping:
            continue
        refs = []
        for s in n.input:
            src, idx, ctrl = parse_input(s)
            if src in mapping:
                real = mapping[src]
                refs.append("^" + real[0] if ctrl else input_ref(real[0], real[1]))
            else:
                refs.append(s)
        del n.input[:]
        n.input.extend(refs)
        if "_class" in n.attr:
            locs = [c for c in n.attr["_class"].list.s if c[5:].decode() not in mapping]
            del n.attr["_class"].list.s[:]
            n.attr["_class"].list.s.extend(locs)
            if not locs:
                del n.attr["_class"]
        if colocation is not None and "_class" not in n.attr:
            n.attr["_class"].CopyFrom(colocation)
        if device and not n.device:
            n.device = device
        out.append(n)
    return out


def new_scratch_graph():
    tf = _tf()
    return tf.Graph()


def check_names_free(ir, nodes) -> None:
    for n in nodes:
        if n.name in ir:
            raise GraphfixError(f"cannot add node {n.name!r}: the name is taken")
