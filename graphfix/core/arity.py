"""How many data inputs ops of a fixed arity take (from TensorFlow's op registry).

The analyses and rules pattern-match these ops and read their inputs by
position, so the IR checks a node of one of them has exactly that many data
inputs when it is built (TensorFlow rejects any other count when it imports
the graph).  Written out so that ``check`` needs no TensorFlow import;
``tests/test_bad_input.py`` checks the table against the registry.
"""

_BY_COUNT = {
    0: "Const NoOp Placeholder VarHandleOp Variable VariableV2",
    1: ("Abs Acos Asin Atan Atanh Cast Ceil CheckNumerics Cos Digamma Elu EnsureShape Enter Erf Erfc Exit Exp "
        "Expm1 Floor Identity Inv IsFinite IsInf IsNan IsVariableInitialized L2Loss LeakyRelu Lgamma Log "
        "Log1p LogSoftmax LogicalNot Neg NextIteration OnesLike PlaceholderWithDefault PreventGradient "
        "RandomStandardNormal RandomUniform Rank ReadVariableOp Reciprocal RefEnter RefExit Relu Relu6 Round "
        "Rsqrt Selu Shape Sigmoid Sign Sin Size Snapshot Softmax Softplus Softsign Sqrt Square Squeeze "
        "StopGradient Tanh TopK TruncatedNormal Unique UniqueWithCounts VarIsInitializedOp Where ZerosLike"),
    2: ("Add AddV2 All Any ArgMax ArgMin Assign AssignAdd AssignSub AssignVariableOp Atan2 BatchMatMul "
        "BatchMatMulV2 BatchMatMulV3 BiasAdd BroadcastTo Complex Cumprod Cumsum Div DivNoNan DynamicPartition "
        "Equal EuclideanNorm ExpandDims Fill FloorDiv FloorMod Gather GatherNd Greater GreaterEqual InTopK "
        "Less LessEqual ListDiff LogicalAnd LogicalOr MatMul Max Maximum Mean Min Minimum MirrorPad Mul "
        "MulNoNan NotEqual Pad Pow Prod RealDiv RefSwitch Reshape ResourceGather ReverseV2 SegmentSum "
        "SoftmaxCrossEntropyWithLogits SparseSoftmaxCrossEntropyWithLogits SquaredDifference Sub Sum Switch "
        "Tile TopKV2 Transpose UniqueV2 Xdivy Xlog1py Xlogy"),
    3: ("ClipByValue GatherV2 InTopKV2 PadV2 Range Select SelectV2 Slice SparseSegmentMean SparseSegmentSum "
        "UnsortedSegmentSum"),
    4: "OneHot StridedSlice",
    5: "FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3",
}

ARITY: dict[str, int] = {op: n for n, ops in _BY_COUNT.items() for op in ops.split()}
