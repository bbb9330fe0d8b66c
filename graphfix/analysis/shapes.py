"""Static ranks and dimensions of tensors, where the graph states them.

A tensor's rank is known from its ``_output_shapes`` attribute (when the
writer recorded it), from a constant's value, a placeholder's or variable's
``shape`` attribute, ``MatMul`` (always rank 2), a ``Reshape`` to a constant
shape, and through element-wise ops (an unary op keeps its input's shape; a
broadcasting binary op has the broadcast of its two inputs' shapes).  Anything
else is unknown (None): the callers only draw conclusions from a known shape.
"""
from __future__ import annotations

from graphfix.analysis.consts import const_value

_UNARY = frozenset({
    "Identity", "Snapshot", "StopGradient", "PreventGradient", "Cast", "Neg", "Abs", "Square", "Sqrt", "Rsqrt",
    "Reciprocal", "Inv", "Exp", "Expm1", "Log", "Log1p", "Sigmoid", "Tanh", "Relu", "Relu6", "Elu", "Selu",
    "Softplus", "Softsign", "LeakyRelu", "Floor", "Ceil", "Round", "Rint", "Sign", "Softmax", "LogSoftmax",
    "BiasAdd", "Dropout", "CheckNumerics", "EnsureShape",
})
_BINARY = frozenset({"Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "Maximum", "Minimum", "Pow",
                     "SquaredDifference", "DivNoNan", "MulNoNan"})
_SHAPE_ATTR = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault", "VariableV2", "Variable",
                         "VarHandleOp"})


def _declared(ir, t):
    """The shape the graph writes down for ``t``: a list of dims (-1 unknown), or None."""
    name, out = t
    shapes = ir.attr(name, "_output_shapes")
    if shapes is not None and len(shapes.list.shape) > out and not shapes.list.shape[out].unknown_rank:
        return [d.size for d in shapes.list.shape[out].dim]
    op = ir.op(name)
    if op == "Const" and out == 0:
        value = ir.attr(name, "value")
        return None if value is None else [d.size for d in value.tensor.tensor_shape.dim]
    if op == "ReadVariableOp" and ir.inputs(name):  # a resource variable's value: its handle's shape
        name, op = ir.input(name, 0)[0], ir.op(ir.input(name, 0)[0])
    if op in _SHAPE_ATTR:
        shape = ir.attr(name, "shape")
        if shape is not None and not shape.shape.unknown_rank:
            return [d.size for d in shape.shape.dim]
    return None


def static_shape(ir, t) -> list[int] | None:
    """Dims of tensor ``t`` (-1 where a dim is unknown), or None if its rank is unknown.

    Walks up through element-wise ops only, each node once (no depth limit:
    a chain of unary ops is followed to the op that states a shape)."""
    try:
        return _shape(ir, t, {}, set())
    except RecursionError:  # a very deep tree of broadcasting ops: say nothing
        return None


def _shape(ir, t, memo, active):
    if t in memo:
        return memo[t]
    if t in active:  # a cycle (a malformed graph): unknown
        return None
    active.add(t)
    start = t
    shape = None
    while True:
        shape = _declared(ir, t)
        if shape is not None:
            break
        op = ir.op(t[0])
        ins = ir.inputs(t[0])
        if t[1] != 0:
            break
        if op == "Reshape" and len(ins) >= 2:
            target = const_value(ir, ins[1][0])
            shape = None if target is None or target.ndim != 1 else [int(d) for d in target]
            break
        if op == "MatMul" and len(ins) >= 2:
            shape = _matmul(ir, t[0], memo, active)
            break
        if op in _UNARY and ins and ins[0] not in active:
            t = ins[0]
            active.add(t)
            continue
        if op in _BINARY and len(ins) >= 2:
            shape = _broadcast(_shape(ir, ins[0], memo, active), _shape(ir, ins[1], memo, active))
        break
    memo[start] = shape  # unary ops on the chain keep it
    return shape


def _matmul(ir, name, memo, active):
    """[rows, cols] of a MatMul (-1 where an operand's dim is unknown)."""
    dims = []
    for i, key, pick in ((0, "transpose_a", (0, 1)), (1, "transpose_b", (1, 0))):
        flag = ir.attr(name, key)
        shape = _shape(ir, ir.input(name, i), memo, active)
        k = pick[1] if flag is not None and flag.b else pick[0]
        dims.append(shape[k] if shape is not None and len(shape) == 2 else -1)
    return dims


def _broadcast(a, b):
    if a is None or b is None:
        return None
    n = max(len(a), len(b))
    a = [1] * (n - len(a)) + list(a)
    b = [1] * (n - len(b)) + list(b)
    return [x if y == 1 else y if x == 1 else x if x == y else -1 for x, y in zip(a, b)]


def static_rank(ir, t) -> int | None:
    """Rank of tensor ``t``, or None when the graph does not say."""
    shape = static_shape(ir, t)
    return None if shape is None else len(shape)
