"""Transfer functions of the numeric analysis, one table entry per TensorFlow op.

``TRANSFER[op](ev, name, ins)`` gets the evaluator (dtype, constants, attrs),
the node name and the abstract values of its data inputs, and returns the
abstract value of output 0 (or a list, one per output).  Ops missing from the
table get :func:`unknown` — an unbounded value that is NaN only if an input
is — never an error.  ``tests/test_numeric.py`` checks every key against
TensorFlow's op registry.

Float semantics follow the op's dtype (:mod:`graphfix.analysis.absval`):
``exp`` overflows to inf and flushes to exactly 0, sigmoid and softmax
saturate at exactly 0 and 1, sums round (``1 + 1e-10 == 1`` in float32),
products underflow.

The functions live by op family: :mod:`.sources`, :mod:`.unary`,
:mod:`.binary`, :mod:`.structure` (reductions, data movement, control flow),
:mod:`.grad_ops`; :mod:`.common` holds what they share.
"""
from __future__ import annotations

import math

from graphfix.analysis.absval import INF
from graphfix.analysis.transfer.binary import (
         add,
         clip,
         comparison,
         div,
         div_no_nan,
         maximum,
         minimum,
         mul,
         mul_no_nan,
         pow_,
         select,
         squared_difference,
         sub,
         xlogy,
)
from graphfix.analysis.transfer.common import same, unknown
from graphfix.analysis.transfer.grad_ops import (
         bounded_grad,
         broadcast_args,
         leaky_relu_grad,
         reciprocal_grad,
         rsqrt_grad,
         sqrt_grad,
)
from graphfix.analysis.transfer.sources import (
         const,
         data_source,
         placeholder,
         placeholder_with_default,
         random_normal,
         random_uniform,
         random_uniform_int,
         truncated_normal,
         variable,
)
from graphfix.analysis.transfer.structure import (
         arg_index,
         concat,
         count,
         dynamic_partition,
         euclidean_norm,
         fill,
         functional_call,
         gather,
         identity_n,
         in_top_k,
         l2_loss,
         log_softmax,
         matmul,
         merge,
         one_hot,
         pack,
         pad,
         range_,
         reduce_extreme,
         reduce_mean,
         reduce_prod,
         reduce_sum,
         set_diff,
         shape_n,
         softmax,
         split,
         strided_slice,
         switch,
         top_k,
         unique,
         unpack,
         where_indices,
         xent,
)
from graphfix.analysis.transfer.unary import (
         absolute,
         boolean,
         bounded,
         cast,
         elu,
         exp,
         expm1,
         log,
         log1p,
         monotone,
         neg,
         ones_like,
         reciprocal,
         relu,
         relu6,
         rsqrt,
         sigmoid,
         sign,
         softplus,
         sqrt,
         square,
         tanh,
         zeros_like,
)

_SAME = ("Identity", "Snapshot", "StopGradient", "PreventGradient", "Reshape", "Squeeze", "ExpandDims", "Transpose",
         "Tile", "Slice", "ReverseV2", "BroadcastTo", "EnsureShape", "CheckNumerics", "Enter",
         "RefEnter", "Exit", "RefExit", "NextIteration", "RefNextIteration", "RefIdentity", "MatrixBandPart",
         "SpaceToDepth", "DepthToSpace", "SpaceToBatchND", "BatchToSpaceND", "MaxPool", "MaxPoolV2", "MaxPool3D",
         "AvgPool", "AvgPool3D", "RandomShuffle", "Cumsum", "ResizeNearestNeighbor", "ExtractImagePatches",
         "ReverseSequence", "DebugIdentity", "ParallelConcat", "TensorScatterUpdate",
         "MirrorPad", "Roll", "ScatterNd", "SegmentMax", "SegmentMin", "UnsortedSegmentMax", "UnsortedSegmentMin",
         "Bitcast")
_UNKNOWN = ("LRN", "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "Conv2D", "Conv3D",
            "DepthwiseConv2dNative", "Conv2DBackpropInput",
            "Conv2DBackpropFilter", "Einsum", "Atan2", "Cos", "Sin", "Tan", "Lgamma", "Digamma", "BiasAddGrad",
            "ResizeBilinear", "Cumprod", "SegmentSum", "UnsortedSegmentSum", "SparseSegmentSum",
            "SparseSegmentMean", "SparseSegmentSqrtN", "DynamicStitch", "ParallelDynamicStitch", "Xdivy", "FloorMod",
            "Mod", "TruncateMod", "FloorDiv", "TruncateDiv", "Elu", "Selu", "LeakyRelu", "Softsign")

TRANSFER = {op: same for op in _SAME}
TRANSFER.update({op: unknown for op in _UNKNOWN})
TRANSFER.update({
    "Const": const, "HostConst": const,
    "Placeholder": placeholder, "PlaceholderV2": placeholder, "PlaceholderWithDefault": placeholder_with_default,
    "VariableV2": variable, "Variable": variable, "VarHandleOp": variable, "ReadVariableOp": variable,
    "ResourceGather": variable,
    "IteratorGetNext": data_source, "IteratorGetNextSync": data_source, "QueueDequeueV2": data_source,
    "QueueDequeueManyV2": data_source, "QueueDequeueUpToV2": data_source, "QueueDequeue": data_source,
    "QueueDequeueMany": data_source, "ParseExample": data_source, "ParseExampleV2": data_source,
    "ParseSingleExample": data_source, "DecodeRaw": data_source, "DecodeCSV": data_source,
    "DecodeJpeg": data_source, "DecodePng": data_source, "DecodeImage": data_source,
    "RandomUniform": random_uniform, "RandomStandardNormal": random_normal, "TruncatedNormal": truncated_normal,
    "RandomUniformInt": random_uniform_int, "ParameterizedTruncatedNormal": random_normal,
    "Neg": neg, "Abs": absolute, "Square": square, "Sqrt": sqrt, "Rsqrt": rsqrt, "Reciprocal": reciprocal,
    "Inv": reciprocal, "Exp": exp, "Expm1": expm1, "Log": log, "Log1p": log1p, "Sigmoid": sigmoid, "Tanh": tanh,
    "Relu": relu, "Relu6": relu6, "Elu": elu, "Softplus": softplus, "Sign": sign,
    "Floor": monotone(math.floor), "Ceil": monotone(math.ceil), "Round": monotone(round), "Rint": monotone(round),
    "Atan": monotone(math.atan, True), "Erf": monotone(math.erf, True), "Asinh": monotone(math.asinh, True),
    "Erfc": bounded(0.0, 2.0, zero_at=INF), "Acos": bounded(0.0, math.pi, zero_at=1.0),
    "Asin": bounded(-math.pi / 2, math.pi / 2, zero_at=0.0), "Atanh": unknown,
    "Cast": cast, "ZerosLike": zeros_like, "OnesLike": ones_like,
    "Add": add, "AddV2": add, "AddN": add, "BiasAdd": add, "Sub": sub, "Mul": mul, "RealDiv": div, "Div": div,
    "DivNoNan": div_no_nan, "MulNoNan": mul_no_nan, "Maximum": maximum, "Minimum": minimum, "Pow": pow_,
    "SquaredDifference": squared_difference, "Select": select, "SelectV2": select, "Xlogy": xlogy,
    "Xlog1py": unknown, "ClipByValue": clip,
    "Less": comparison, "LessEqual": comparison, "Greater": comparison, "GreaterEqual": comparison,
    "Equal": comparison, "NotEqual": comparison, "LogicalAnd": boolean, "LogicalOr": boolean,
    "LogicalNot": boolean, "IsFinite": boolean, "IsNan": boolean, "IsInf": boolean, "All": boolean, "Any": boolean,
    "InTopK": in_top_k, "InTopKV2": in_top_k, "IsVariableInitialized": boolean, "VarIsInitializedOp": boolean,
    "Sum": reduce_sum, "Mean": reduce_mean, "Max": reduce_extreme, "Min": reduce_extreme, "Prod": reduce_prod,
    "EuclideanNorm": euclidean_norm, "L2Loss": l2_loss, "ArgMax": arg_index, "ArgMin": arg_index,
    "Size": count, "Shape": count, "Rank": count, "ShapeN": shape_n,
    "ConcatV2": concat, "Concat": concat, "Pack": pack, "Split": split, "SplitV": split, "Unpack": unpack,
    "StridedSlice": strided_slice,
    "Gather": gather, "GatherV2": gather, "GatherNd": gather, "Fill": fill, "OneHot": one_hot, "Pad": pad, "PadV2": pad,
    "Where": where_indices, "DynamicPartition": dynamic_partition, "ListDiff": set_diff,
    "Unique": unique, "UniqueV2": unique, "UniqueWithCounts": unique, "TopKV2": top_k, "Range": range_,
    "MatMul": matmul, "BatchMatMul": matmul, "BatchMatMulV2": matmul, "BatchMatMulV3": matmul,
    "Softmax": softmax, "LogSoftmax": log_softmax,
    "SoftmaxCrossEntropyWithLogits": xent, "SparseSoftmaxCrossEntropyWithLogits": xent,
    "Merge": merge, "RefMerge": merge, "Switch": switch, "RefSwitch": switch, "IdentityN": identity_n,
    "If": functional_call, "StatelessIf": functional_call, "PartitionedCall": functional_call,
    "StatefulPartitionedCall": functional_call,
    "SqrtGrad": sqrt_grad, "RsqrtGrad": rsqrt_grad, "ReciprocalGrad": reciprocal_grad, "InvGrad": reciprocal_grad,
    "SigmoidGrad": bounded_grad, "TanhGrad": bounded_grad, "ReluGrad": bounded_grad, "Relu6Grad": bounded_grad,
    "SoftplusGrad": bounded_grad, "EluGrad": bounded_grad, "SeluGrad": bounded_grad,
    "LeakyReluGrad": leaky_relu_grad, "BroadcastGradientArgs": broadcast_args,
})
