"""Value facts: non-negative, strictly positive, count- and mask-like, bounded.

Local, demand-driven reasoning over a tensor's producers (memoised per
analysis run, depth-limited).  Facts are *must* facts: ``positive(t)`` means
``t > 0`` in every element on every run, so a denominator or a ``Log``
argument with that fact is safe.  ``Exp``, ``Softplus`` and ``Sigmoid`` are
non-negative but not positive: in float32 they underflow to exactly 0.
"""
from __future__ import annotations

from graphfix.analysis.consts import const_scalar, const_value
from graphfix.analysis.dtypes import DT_BOOL, out_dtype

MAX_DEPTH = 24
PASS_THROUGH = frozenset({"Identity", "Snapshot", "StopGradient", "PreventGradient", "Reshape", "Squeeze",
                          "ExpandDims", "Transpose", "Tile", "Switch", "RefSwitch", "Enter", "RefEnter", "Exit",
                          "RefExit", "ReverseV2", "Slice", "StridedSlice", "BroadcastTo", "EnsureShape",
                          "CheckNumerics"})
GATHERS = frozenset({"Gather", "GatherV2", "GatherNd", "ResourceGather", "BatchGather"})
ALWAYS_NONNEG = frozenset({"Abs", "Square", "Relu", "Relu6", "Softplus", "Sigmoid", "Softmax", "Exp", "Sqrt",
                           "Size", "Shape", "Rank", "ZerosLike", "OnesLike", "EuclideanNorm",
                           "SquaredDifference", "L2Loss", "Rsqrt", "Where", "OneHot", "Elu_plus1"})
REDUCE_KEEP_SIGN = frozenset({"Sum", "Mean", "Max", "Min", "Prod", "Cumsum", "SegmentSum",
                              "UnsortedSegmentSum", "SparseSegmentSum", "SparseSegmentMean"})


# comparison op -> (position of x, test on the constant, needs x >= 0)
_POSITIVE_TESTS = {"Greater": (0, lambda k: k >= 0, False), "Less": (1, lambda k: k >= 0, False),
                   "NotEqual": (0, lambda k: k == 0, True)}
_NONPOSITIVE_TESTS = {"LessEqual": (0, lambda k: k == 0, False), "Equal": (0, lambda k: k == 0, True)}


class Ranges:
    def __init__(self, ir):
        self.ir = ir
        self._nonneg: dict = {}
        self._pos: dict = {}
        self._bounded: dict = {}

    # ------------------------------------------------------------ helpers
    def _const(self, t):
        return const_value(self.ir, t[0]) if t[1] == 0 else None

    def _ins(self, t):
        return self.ir.inputs(t[0])

    # ------------------------------------------------------------ nonneg
    def nonneg(self, t, depth: int = 0) -> bool:
        """Every element of ``t`` is >= 0."""
        if t in self._nonneg:
            return self._nonneg[t]
        self._nonneg[t] = False  # cycles (loops) stay unknown
        r = depth < MAX_DEPTH and self._nonneg_uncached(t, depth)
        self._nonneg[t] = r
        return r

    def _nonneg_uncached(self, t, d) -> bool:
        op = self.ir.op(t[0])
        ins = self._ins(t)
        if op == "Const":
            v = self._const(t)
            return v is not None and v.dtype.kind in "fiub" and bool((v >= 0).all())
        if op in ALWAYS_NONNEG:
            return True
        if op == "Cast":
            return out_dtype(self.ir, *ins[0]) == DT_BOOL or self.nonneg(ins[0], d + 1)
        if op in PASS_THROUGH or op in REDUCE_KEEP_SIGN or op in GATHERS:
            return bool(ins) and self.nonneg(ins[0], d + 1)
        if op in ("Mul", "RealDiv", "Div", "DivNoNan", "MulNoNan", "Pow"):
            if op == "Mul" and ins[0] == ins[1]:
                return True
            if op == "Pow":
                return self.nonneg(ins[0], d + 1)
            return self.nonneg(ins[0], d + 1) and self.nonneg(ins[1], d + 1)
        if op in ("Add", "AddV2", "AddN", "Minimum", "Merge", "RefMerge", "ConcatV2", "Pack"):
            vals = ins[:-1] if op == "ConcatV2" else ins
            return bool(vals) and all(self.nonneg(x, d + 1) for x in vals)
        if op == "Maximum":
            return any(self.nonneg(x, d + 1) for x in ins)
        if op in ("Select", "SelectV2"):
            return self.nonneg(ins[1], d + 1) and self.nonneg(ins[2], d + 1)
        if op == "Fill":
            return self.nonneg(ins[1], d + 1)
        if op == "ClipByValue":
            return self.nonneg(ins[1], d + 1)
        return False

    # ------------------------------------------------------------ positive
    def positive(self, t, depth: int = 0) -> bool:
        """Every element of ``t`` is > 0 (and cannot underflow to 0)."""
        if t in self._pos:
            return self._pos[t]
        self._pos[t] = False
        r = depth < MAX_DEPTH and self._positive_uncached(t, depth)
        self._pos[t] = r
        return r

    def _positive_uncached(self, t, d) -> bool:
        op = self.ir.op(t[0])
        ins = self._ins(t)
        if op == "Const":
            v = self._const(t)
            return v is not None and v.dtype.kind in "fiu" and v.size > 0 and bool((v > 0).all())
        if op == "OnesLike":
            return True
        if op in PASS_THROUGH or op in GATHERS or op in ("Max", "Min", "Mean"):
            return bool(ins) and self.positive(ins[0], d + 1)
        if op == "Cast":
            return out_dtype(self.ir, *ins[0]) != DT_BOOL and self.positive(ins[0], d + 1)
        if op == "Maximum":
            return any(self.positive(x, d + 1) for x in ins)
        if op in ("Add", "AddV2", "AddN"):
            return all(self.nonneg(x, d + 1) for x in ins) and any(self.positive(x, d + 1) for x in ins)
        if op in ("Minimum", "Merge", "RefMerge"):
            return bool(ins) and all(self.positive(x, d + 1) for x in ins)
        if op in ("Sqrt", "Rsqrt", "Reciprocal", "Inv"):
            return self.positive(ins[0], d + 1)
        if op == "Fill":
            return self.positive(ins[1], d + 1)
        if op == "ClipByValue":
            return self.positive(ins[1], d + 1)
        if op in ("Select", "SelectV2"):
            c, a, b = ins[:3]
            if self.positive(a, d + 1) and self.positive(b, d + 1):
                return True
            # where(x > 0, x, positive) and where(x <= 0, positive, x)
            return (self._is_positive_test(c, a) and self.positive(b, d + 1)) or \
                (self._is_nonpositive_test(c, b) and self.positive(a, d + 1))
        return False

    def _is_positive_test(self, c, x) -> bool:
        """``c`` is ``x > k``, ``k < x`` (k >= 0) or ``x != 0`` with x >= 0."""
        return self._compares(c, x, _POSITIVE_TESTS)

    def _is_nonpositive_test(self, c, x) -> bool:
        """``c`` is ``x <= 0``, or ``x == 0`` with x >= 0."""
        return self._compares(c, x, _NONPOSITIVE_TESTS)

    def _compares(self, c, x, tests) -> bool:
        from graphfix.analysis.guards import strip

        ir = self.ir
        c = strip(ir, c)
        spec = tests.get(ir.op(c[0]))
        ins = self._ins(c)
        if spec is None or len(ins) != 2:
            return False
        x_pos, const_ok, needs_nonneg = spec
        k = const_scalar(ir, ins[1 - x_pos])
        return strip(ir, ins[x_pos]) == strip(ir, x) and k is not None and const_ok(k) and \
            (not needs_nonneg or self.nonneg(x))

    # ------------------------------------------------------------ upper bound
    def bounded_above(self, t, depth: int = 0) -> bool:
        """``t`` cannot be large enough to overflow ``Exp`` (it is <= some modest constant)."""
        if t in self._bounded:
            return self._bounded[t]
        self._bounded[t] = False
        r = depth < MAX_DEPTH and self._bounded_uncached(t, depth)
        self._bounded[t] = r
        return r

    def _bounded_uncached(self, t, d) -> bool:
        ir = self.ir
        op = ir.op(t[0])
        ins = self._ins(t)
        if op == "Const":
            v = self._const(t)
            limit = {8: 709.5, 2: 11.5}.get(v.dtype.itemsize, 88.5) if v is not None else 0
            return v is not None and v.dtype.kind in "fiu" and bool((v <= limit).all())
        if op in ("Sigmoid", "Tanh", "Softmax", "LogSoftmax", "LogSigmoid", "Cos", "Sin", "ZerosLike",
                  "OnesLike", "Log", "Log1p", "Cast"):
            return op != "Cast" or out_dtype(ir, *ins[0]) == DT_BOOL or self.bounded_above(ins[0], d + 1)
        if op == "Neg":
            return self.nonneg(ins[0], d + 1)
        if op in PASS_THROUGH or op in GATHERS:
            return bool(ins) and self.bounded_above(ins[0], d + 1)
        if op == "Minimum":
            return any(self.bounded_above(x, d + 1) for x in ins)
        if op in ("Select", "SelectV2") and self._minus_abs(ins):
            return True
        if op in ("Maximum", "Add", "AddV2", "AddN", "Select", "SelectV2", "Merge"):
            vals = ins[1:] if op.startswith("Select") else ins
            return all(self.bounded_above(x, d + 1) for x in vals)
        if op == "ClipByValue":
            return self.bounded_above(ins[2], d + 1)
        if op == "Sub":
            # x - max(x) (the stable softmax / logsumexp shift), or bounded - nonneg
            a, b = ins
            if ir.op(b[0]) == "Max" and ir.inputs(b[0])[0] == a:
                return True
            if ir.op(b[0]) in ("StopGradient", "Identity") and ir.op(ir.input(b[0], 0)[0]) == "Max" and \
                    ir.inputs(ir.input(b[0], 0)[0])[0] == a:
                return True
            return self.bounded_above(a, d + 1) and self.nonneg(b, d + 1)
        return False

    def _minus_abs(self, ins) -> bool:
        """``where(x >= 0, -x, x)``: -|x| as tf.nn.sigmoid_cross_entropy_with_logits builds it."""
        from graphfix.analysis.guards import strip

        ir = self.ir
        c, a, b = (strip(ir, t) for t in ins[:3])
        cop = ir.op(c[0])
        if cop not in ("GreaterEqual", "Greater", "Less", "LessEqual"):
            return False
        x = strip(ir, ir.input(c[0], 0))
        zero = strip(ir, ir.input(c[0], 1))
        v = self._const(zero)
        if ir.op(zero[0]) == "ZerosLike":
            if strip(ir, ir.input(zero[0], 0)) != x:
                return False
        elif v is None or v.size == 0 or not bool((v == 0).all()):
            return False
        neg, plain = (a, b) if cop in ("GreaterEqual", "Greater") else (b, a)
        return ir.op(neg[0]) == "Neg" and strip(ir, ir.input(neg[0], 0)) == x and plain == x

    # ------------------------------------------------------------ counts and masks
    def mask_like(self, t, depth: int = 0) -> bool:
        """A 0/1 (or 0/positive) weight built from a boolean or one-hot."""
        ir = self.ir
        op = ir.op(t[0])
        ins = self._ins(t)
        if depth > MAX_DEPTH:
            return False
        if op == "Cast":
            return out_dtype(ir, *ins[0]) == DT_BOOL or self.mask_like(ins[0], depth + 1)
        if op in ("OneHot", "SequenceMask"):
            return True
        if op in PASS_THROUGH or op in GATHERS:
            return bool(ins) and self.mask_like(ins[0], depth + 1)
        if op in ("Select", "SelectV2"):
            return self.mask_like(ins[1], depth + 1) and self.mask_like(ins[2], depth + 1)
        if op == "Const":
            v = self._const(t)
            return v is not None and bool(((v == 0) | (v == 1)).all())
        if op == "Mul":
            return self.mask_like(ins[0], depth + 1) and self.mask_like(ins[1], depth + 1)
        return False

    def data_only(self, t, depth: int = 0) -> bool:
        """``t`` is computed from feeds and constants only (no variable): labels, masks, weights."""
        ir = self.ir
        stack = [t[0]]
        seen = set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            op = ir.op(n)
            if op in ("VariableV2", "Variable", "VarHandleOp", "ReadVariableOp"):
                return False
            if len(seen) > 200:
                return False
            stack.extend(s for s, _ in ir.inputs(n))
        return True
