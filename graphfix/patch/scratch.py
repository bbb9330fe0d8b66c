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
import os

from graphfix.core import tfimport
from graphfix.core.errors import GraphfixError, UnsupportedOpError
from graphfix.core.ir import input_ref, parse_input, split_tensor
from graphfix.core.tfimport import protos
from graphfix.core.tfimport import tf as _tf

PLACEHOLDER_PREFIX = "graphfix_scratch_input"


@contextlib.contextmanager
def v1_control_flow():
    """Build ``tf.compat.v1.cond`` as Switch/Merge (what TF1 graphs hold)."""
    control_flow_util = tfimport.module("tensorflow.python.ops.control_flow_util")

    old = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
    try:
        yield
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = old


LOAD_LIBRARY_HINT = ("load the library that defines it before running graphfix "
                     "(graphfix --op-library LIB.so, or tf.load_op_library in Python)")


def _unsupported(ops: dict[str, str]) -> UnsupportedOpError:
    """The error for unregistered ops (``{op: a node using it}``)."""
    items = sorted(ops.items())
    named = ", ".join(f"{op!r} (node {node!r})" for op, node in items[:3])
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    verb = "is" if len(items) == 1 else "are"
    return UnsupportedOpError(f"op{'s' if len(items) > 1 else ''} {named}{more} {verb} not registered in this "
                              f"TensorFlow; {LOAD_LIBRARY_HINT}")


def _malformed(nodedef, what: str) -> GraphfixError:
    return GraphfixError(f"node {nodedef.name!r} ({nodedef.op}) {what}: the graph is malformed")


# OpDef attr type -> the AttrValue field that holds it.
_ATTR_FIELD = {"type": "type", "int": "i", "float": "f", "bool": "b", "string": "s", "shape": "shape",
               "tensor": "tensor", "func": "func"}


def _attr_field(op_attr_type: str) -> str | None:
    return "list" if op_attr_type.startswith("list(") else _ATTR_FIELD.get(op_attr_type)


def _valid_type(t: int) -> bool:
    types_pb2 = protos().types_pb2

    return t > 0 and t in types_pb2.DataType.values()


def output_types(nodedef) -> list[int]:
    """The DataType enum of every output of ``nodedef``, from TensorFlow's op registry.

    Raises :class:`UnsupportedOpError` for an unregistered op and a
    :class:`GraphfixError` when an attr the outputs depend on is missing or wrong.
    """
    return _arg_types(nodedef, inputs=False)


def input_types(nodedef) -> list[int]:
    """The DataType enum (refs reduced to their base) each data input of ``nodedef`` must have."""
    return _arg_types(nodedef, inputs=True)


def _arg_types(nodedef, inputs: bool) -> list[int]:
    op_def_registry = tfimport.module("tensorflow.python.framework.op_def_registry")

    op_def = op_def_registry.get(nodedef.op)
    if op_def is None:
        raise _unsupported({nodedef.op: nodedef.name})
    defaults = {a.name: a.default_value for a in op_def.attr if a.HasField("default_value")}

    def attr(key, field):
        value = nodedef.attr[key] if key in nodedef.attr else defaults.get(key)
        if value is None:
            raise _malformed(nodedef, f"has no attr {key!r}")
        if value.WhichOneof("value") != field:
            raise _malformed(nodedef, f"attr {key!r} is not a {'list' if field == 'list' else field}")
        return value

    def dtype(t):
        if not _valid_type(t):
            raise _malformed(nodedef, f"has an invalid data type ({t})")
        return t

    types = []
    for arg in op_def.input_arg if inputs else op_def.output_arg:
        if arg.number_attr:
            n = attr(arg.number_attr, "i").i
            if not 0 <= n <= 1 << 20:
                raise _malformed(nodedef, f"attr {arg.number_attr!r} is {n}")
            t = arg.type or attr(arg.type_attr, "type").type
            types.extend([dtype(t)] * n)
        elif arg.type_list_attr:
            types.extend(dtype(t) for t in attr(arg.type_list_attr, "list").list.type)
        elif arg.type_attr:
            types.append(dtype(attr(arg.type_attr, "type").type))
        else:
            types.append(arg.type)
    return [t - 100 if t > 100 else t for t in types]


def output_type(ir, tensor: tuple[str, int]) -> int:
    """The DataType enum of ``tensor`` = (node, output index) of ``ir``."""
    nodedef = ir.node(tensor[0])
    types = output_types(nodedef)
    if not 0 <= tensor[1] < len(types):
        raise _malformed(nodedef, f"has {len(types)} output(s), but the graph reads its output {tensor[1]}")
    return types[tensor[1]]


_SPECS: dict[str, object] = {}


def _op_spec(op: str):
    """(fixed output count or None, ((required attr, field, allowed types), ...)) of a registered op, else None."""
    spec = _SPECS.get(op)
    if spec is None and op not in _SPECS:
        op_def_registry = tfimport.module("tensorflow.python.framework.op_def_registry")

        op_def = op_def_registry.get(op)
        if op_def is not None:
            variadic = any(a.number_attr or a.type_list_attr for a in op_def.output_arg)
            required = tuple((a.name, _attr_field(a.type),
                              frozenset(a.allowed_values.list.type) if a.type == "type" and
                              a.HasField("allowed_values") else None)
                             for a in op_def.attr if not a.HasField("default_value"))
            spec = (None if variadic else len(op_def.output_arg), required)
        _SPECS[op] = spec
    return spec


def validate_graph(ir) -> None:
    """Check, once per IR, what TensorFlow checks when it imports the graph and
    graphfix relies on when it builds guards: every op is registered (or a
    function of the graph's library), every attr the op requires is there with
    the right kind (and an allowed type), and every tensor read exists.  Cheap
    (no import, about 0.3 s per 100k nodes), so it runs before the first guard
    is built.  Raises UnsupportedOpError / GraphfixError naming the first problem."""
    if ir.validated:
        return
    functions = {f.signature.name for f in ir.library.function} if ir.library is not None else set()
    unknown: dict[str, str] = {}
    n_out: dict[str, int | None] = {}
    for name, op in ir.op_table().items():
        spec = _op_spec(op)
        if spec is None:
            if op not in functions:
                unknown.setdefault(op, name)
            n_out[name] = None
            continue
        n_out[name], required = spec
        if not required:
            continue
        nd = ir.node(name)
        attrs = nd.attr
        for key, field, allowed in required:
            if key not in attrs:
                raise _malformed(nd, f"has no attr {key!r}, which the op requires")
            value = attrs[key]
            if field is not None and value.WhichOneof("value") != field:
                raise _malformed(nd, f"attr {key!r} is not a {field}")
            if allowed is not None and value.type not in allowed:
                raise _malformed(nd, f"attr {key!r} has a data type the op does not allow ({value.type})")
    if unknown:
        raise _unsupported(unknown)
    no_outputs = {name for name, count in n_out.items() if count == 0}
    if _reads_exist(ir, n_out, no_outputs):
        ir.mark_validated()
        return
    for nd in (ir.node(name) for name in ir.names()):  # a read of a missing output: the first one, in order
        for s in nd.input:
            if ":" not in s and s not in no_outputs:
                continue  # output 0 of a node that has one (or a control input)
            if s.startswith("^"):
                continue
            src, out, _ = parse_input(s)
            count = n_out[src]
            if count is None and out > 0:
                count = len(output_types(ir.node(src)))
            if count is not None and out >= count:
                raise _malformed(nd, f"reads {s!r}, but {src!r} has {count} output(s)")
    ir.mark_validated()


def _reads_exist(ir, n_out: dict[str, int | None], no_outputs: set[str]) -> bool:
    """Every tensor a data input reads exists, as far as the op specs tell.
    From the IR's indexes: only the inputs that read an output other than 0,
    and the consumers of ops without outputs, need a look."""
    for p in no_outputs:
        if ir.consumers(p):
            return False
    for name in ir.reads_other_outputs():
        for src, out in ir.inputs(name):
            if out > 0:
                count = n_out[src]
                if count is None:
                    try:
                        count = len(output_types(ir.node(src)))
                    except GraphfixError:
                        return False  # the ordered pass names it
                if out >= count:
                    return False
    return True


def load_op_library(path: str) -> None:
    """Register the ops of a custom-op library (``tf.load_op_library``)."""
    tf = _tf()
    if not os.path.isfile(path):
        raise GraphfixError(f"--op-library {path}: no such file")
    try:
        tf.load_op_library(os.path.abspath(path))
    except Exception as e:  # noqa: BLE001 — NotFoundError / OSError with the loader's message
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GraphfixError(f"--op-library {path}: cannot load it: {msg}") from None


class Builder:
    """Builds ops in a scratch ``tf.Graph`` standing for parts of an IR."""

    def __init__(self, ir, graph):
        self.ir = ir
        self.graph = graph
        self.tf = _tf()
        self.inputs: dict[str, tuple[str, int]] = {}  # placeholder op name -> real tensor
        self._by_tensor: dict[tuple[str, int], object] = {}
        validate_graph(ir)  # TensorFlow is about to see parts of this graph

    def dtype_of(self, tensor: tuple[str, int]):
        dtype = output_type(self.ir, tensor)
        self._check_consumers(tensor, dtype)
        return self.tf.as_dtype(dtype)

    def _check_consumers(self, tensor: tuple[str, int], dtype: int) -> None:
        """The graph's consumers of ``tensor`` take its type (TensorFlow checks this on import;
        a guard built on a mistyped tensor would fail inside TensorFlow instead)."""
        types_pb2 = protos().types_pb2

        functions = {f.signature.name for f in self.ir.library.function} if self.ir.library is not None else ()
        for dst, pos in self.ir.consumers(*tensor):
            nd = self.ir.node(dst)
            if nd.op in functions:
                continue
            want = input_types(nd)
            if pos >= len(want):
                raise _malformed(nd, f"has {len(self.ir.inputs(dst))} data inputs, the op takes {len(want)}")
            if want[pos] != dtype:
                name = {t: types_pb2.DataType.Name(t)[3:].lower() for t in (dtype, want[pos]) if _valid_type(t)}
                raise _malformed(nd, f"input {pos} ({nd.input[pos]!r}) is {name.get(dtype, dtype)}, but the op "
                                     f"takes {name.get(want[pos], want[pos])}")

    def shape_of(self, tensor: tuple[str, int]):
        shapes = self.ir.attr(tensor[0], "_output_shapes")
        if shapes is not None and len(shapes.list.shape) > tensor[1]:
            try:
                return self.tf.TensorShape(shapes.list.shape[tensor[1]])
            except (TypeError, ValueError):  # a hint only: a bad one is ignored
                return None
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
        output_types(nd)  # unregistered op / missing attrs: a clear error, not TensorFlow's
        op_def_registry = tfimport.module("tensorflow.python.framework.op_def_registry")

        known = {a.name for a in op_def_registry.get(nd.op).attr}
        # Attrs the op does not define are ignored by TensorFlow (with a log line on stderr): leave them out.
        attrs = {k: v for k, v in nd.attr.items() if not k.startswith("_") and k in known}
        try:
            op = self.graph._create_op_internal(nd.op, list(inputs), name=op_name or name.rsplit("/", 1)[-1],
                                                attrs=attrs)
        except (TypeError, ValueError, self.tf.errors.OpError) as e:
            msg = " ".join(str(e).split()) or type(e).__name__
            raise GraphfixError(f"node {name!r} ({nd.op}): TensorFlow cannot build it: {msg}") from None
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
