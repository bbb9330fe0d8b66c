"""May-be-empty analysis: which tensors can have zero elements at run time.

A forward data-flow pass in topological order.  Sources are ops whose output
size depends on data: ``Where`` (the indices behind ``tf.boolean_mask``),
``DynamicPartition`` parts, set differences, gathers by such indices, and
shape-derived ``Fill``/``Range``.  Emptiness flows through element-wise ops
(broadcasting against an empty tensor gives an empty tensor), reshapes,
slices, casts and control-flow plumbing.  A reduction over every axis gives a
non-empty scalar — and that is exactly where the NaN appears (``Mean``) or
an identity value is silently produced (``Max``).
"""
from __future__ import annotations

from graphfix.analysis.consts import const_value

SOURCES_ALL_OUTPUTS = frozenset({"DynamicPartition"})
SOURCES_OUT0 = frozenset({"Where", "ListDiff", "SetDiff1d"})

# Output 0 may be empty when input 0 may be.
FIRST_INPUT = frozenset({
    "Identity", "Snapshot", "Cast", "Neg", "Abs", "Square", "Sqrt", "Rsqrt", "Exp", "Expm1", "Log", "Log1p",
    "Sigmoid", "Tanh", "Relu", "Relu6", "Elu", "Selu", "Softplus", "Softsign", "Sign", "Floor", "Ceil", "Round",
    "Reciprocal", "Inv", "StopGradient", "PreventGradient", "Reshape", "Squeeze", "ExpandDims", "Transpose",
    "Softmax", "LogSoftmax", "Slice", "StridedSlice", "ReverseV2", "CheckNumerics", "ZerosLike", "OnesLike",
    "Erf", "Erfc", "Atan", "Asin", "Acos", "Atanh", "Sin", "Cos", "Pad", "PadV2", "MirrorPad", "Unique",
    "UniqueV2", "Enter", "RefEnter", "Exit", "RefExit", "NextIteration", "Switch", "RefSwitch", "LeakyRelu",
    "IdentityN", "EnsureShape", "Tile", "OneHot", "LogicalNot", "IsFinite", "IsNan", "IsInf",
    "BiasAdd", "L2Normalize", "Lgamma", "Digamma", "Cumsum", "Cumprod", "TopKV2", "ClipByValue",
})
# Output may be empty when any data input may be (broadcasting with an empty tensor).
ANY_INPUT = frozenset({
    "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "FloorDiv", "FloorMod", "Maximum", "Minimum", "Pow",
    "SquaredDifference", "Select", "SelectV2", "Greater", "Less", "Equal", "NotEqual", "GreaterEqual",
    "LessEqual", "LogicalAnd", "LogicalOr", "MulNoNan", "DivNoNan", "Xlogy", "Xlog1py", "Xdivy", "Atan2",
    "AddN", "Merge", "RefMerge", "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3",
    "GatherV2", "Gather", "GatherNd", "ResourceGather", "SoftmaxCrossEntropyWithLogits",
    "SparseSoftmaxCrossEntropyWithLogits", "SigmoidCrossEntropyWithLogits", "DynamicStitch",
    "SquaredDifference", "Complex", "BroadcastTo",
})
# Output may be empty when every value input may be.
ALL_INPUTS = frozenset({"ConcatV2", "Concat", "Pack"})
REDUCTIONS = frozenset({"Sum", "Mean", "Max", "Min", "Prod", "All", "Any", "EuclideanNorm", "ArgMax", "ArgMin"})
# Ops whose *value* is a shape that may hold a zero extent.
SHAPE_OPS = frozenset({"Shape", "ShapeN"})
USES_SHAPE = frozenset({"Fill", "Zeros", "Ones", "RandomUniform", "RandomStandardNormal", "TruncatedNormal",
                        "Range"})


def may_be_empty(ir) -> set[tuple[str, int]]:
    """The set of (node, output) tensors that may have zero elements."""
    # A function body analysed on its own: arguments whose value at a call
    # site may be empty (graphfix.funclib.boundary_seeds) start out empty.
    empty: set[tuple[str, int]] = {(a, 0) for a in getattr(ir, "may_be_empty_args", ()) if a in ir}
    zero_dim: set[str] = set()  # int tensors (shapes) that may contain a 0 extent
    for name in ir.topo_order():
        n = ir.node(name)
        op = n.op
        ins = ir.inputs(name)
        if op in SOURCES_ALL_OUTPUTS:
            k = n.attr["num_partitions"].i if "num_partitions" in n.attr else 1
            # The parts read (not range(k): a malformed num_partitions may be huge).
            read = {d["out"] for _, _, d in ir.g.out_edges(name, data=True) if not d["ctrl"]}
            empty.update((name, i) for i in read | {0} if i < max(k, 1))
            continue
        if op in SOURCES_OUT0:
            empty.add((name, 0))
            if op != "Where":
                empty.add((name, 1))
            continue
        if op in SHAPE_OPS:
            if any(t in empty for t in ins):
                zero_dim.add(name)
            continue
        if op in ("Size",):
            continue
        if op in USES_SHAPE:
            if ins and (ins[0][0] in zero_dim or (op == "Range" and const_value(ir, ins[1][0]) is None)):
                empty.add((name, 0))
            continue
        if not ins:
            continue
        if op in ("Pack", "StridedSlice", "Slice", "ConcatV2", "Identity", "Cast", "Reshape") and \
                any(t[0] in zero_dim for t in ins):
            zero_dim.add(name)
        if op in REDUCTIONS:
            if ins[0] in empty and not _reduces_first_axis(ir, name):
                empty.add((name, 0))
            continue
        if op in FIRST_INPUT:
            if ins[0] in empty:
                outs = _num_outputs(n)
                empty.update((name, i) for i in range(outs))
        elif op in ANY_INPUT:
            if any(t in empty for t in ins):
                empty.add((name, 0))
                if op in ("SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits"):
                    empty.add((name, 1))
        elif op in ALL_INPUTS:
            vals = ins[:-1] if op == "ConcatV2" else ins[1:] if op == "Concat" else ins
            if vals and all(t in empty for t in vals):
                empty.add((name, 0))
    return empty


def _num_outputs(n) -> int:
    if n.op in ("Switch", "RefSwitch", "Unique", "UniqueV2", "TopKV2"):
        return 2
    if n.op == "IdentityN":
        return len(n.input)
    return 1


def _reduces_first_axis(ir, name: str) -> bool:
    """True if the reduction's axes include axis 0 (constant, or ``Range(0, …)``
    as ``reduce_*`` builds for a tensor of unknown rank), without keep_dims."""
    keep = ir.attr(name, "keep_dims")
    if keep is not None and keep.b:
        return False
    axes_node = ir.input(name, 1)[0]
    if ir.op(axes_node) == "Range":
        start = const_value(ir, ir.input(axes_node, 0)[0])
        return start is not None and start.size == 1 and int(start.reshape(-1)[0]) == 0
    axes = const_value(ir, axes_node)
    if axes is None:
        return False
    return 0 in list(axes.reshape(-1))
