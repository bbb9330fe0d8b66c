"""Output dtypes of tensors without importing TensorFlow.

Enough of the op registry for the analyses: most ops carry their element type
in ``T``/``dtype``/``DstT``/``out_type``; comparisons give bool; index ops
give int32/int64.  ``None`` means unknown.
"""
from __future__ import annotations

import numpy as np

from graphfix.core.errors import GraphfixError
from graphfix.core.optables import BOOL_OUTPUT

DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_BOOL = 1, 2, 3, 9, 10
DT_BFLOAT16, DT_HALF = 14, 19
FLOAT_TYPES = frozenset({DT_FLOAT, DT_DOUBLE, DT_BFLOAT16, DT_HALF})
REF_OFFSET = 100
# The smallest normal value per float dtype (a clamp floor that stays finite under log).
TINY = {1: np.finfo(np.float32).tiny, 2: np.finfo(np.float64).tiny, 19: np.finfo(np.float16).tiny,
        14: np.finfo(np.float32).tiny}

# Ops whose element type is their required ``T`` attr: without it (a malformed
# graph TensorFlow would reject) a rule cannot tell a float term from another.
T_TYPED = frozenset({
    "Mean", "Sum", "Max", "Min", "Prod", "EuclideanNorm", "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div",
    "DivNoNan", "MulNoNan", "Neg", "Abs", "Square", "Sqrt", "Rsqrt", "Exp", "Expm1", "Log", "Log1p", "Pow",
    "Maximum", "Minimum", "SquaredDifference", "Reciprocal", "Inv", "Sigmoid", "Tanh", "Relu", "Relu6", "Elu",
    "Selu", "Softplus", "Softsign", "Softmax", "LogSoftmax", "Identity", "Select", "SelectV2", "MatMul", "AddN",
    "Xlogy", "Xlog1py", "Xdivy", "Sign", "Floor", "Ceil", "Round", "Erf", "Erfc", "Lgamma", "Digamma",
    "Atan2", "Sin", "Cos", "BiasAdd", "Cumsum", "Cumprod", "ClipByValue", "LeakyRelu", "StopGradient",
    "PreventGradient", "Snapshot", "L2Loss", "BatchMatMul", "BatchMatMulV2",
})


def out_dtype(ir, name: str, out: int = 0) -> int | None:
    """Element type of output ``out`` of node ``name`` (ref types reduced to their base)."""
    n = ir.node(name)
    op = n.op
    a = n.attr
    if op in BOOL_OUTPUT:
        return DT_BOOL
    if op == "Where":
        return DT_INT64
    if op in ("Size", "Shape", "ShapeN"):
        return a["out_type"].type if "out_type" in a else DT_INT32
    if op in ("Unique", "UniqueV2") and out == 1:
        return a["out_idx"].type if "out_idx" in a else DT_INT32
    if op == "Cast":
        return a["DstT"].type if "DstT" in a else None
    if op in ("Merge", "RefMerge") and out == 1:
        return DT_INT32
    if op in ("ArgMax", "ArgMin"):
        return a["output_type"].type if "output_type" in a else DT_INT64
    if op in ("SparseSoftmaxCrossEntropyWithLogits", "SoftmaxCrossEntropyWithLogits"):
        return a["T"].type if "T" in a else None
    if op in ("VarHandleOp",):
        return 20  # DT_RESOURCE
    if op in ("ReadVariableOp", "ResourceGather"):
        return a["dtype"].type if "dtype" in a else None
    if op in T_TYPED and ("T" not in a or a["T"].WhichOneof("value") != "type"):
        raise GraphfixError(f"node {name!r} ({op}) has no type attr 'T', which the op requires: "
                            "the graph is malformed")
    for key in ("T", "dtype", "DstT", "out_type", "Tout", "output_type"):
        if key in a and a[key].WhichOneof("value") == "type":
            t = a[key].type
            return t - REF_OFFSET if t > REF_OFFSET else t
    return None


def is_float(ir, name: str, out: int = 0) -> bool:
    return out_dtype(ir, name, out) in FLOAT_TYPES
