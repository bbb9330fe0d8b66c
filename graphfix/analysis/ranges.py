"""Value facts the rules ask for.

Sign and bounds (``positive``, ``nonneg``, ``bounded_above``) come from the
numeric abstract interpretation (:mod:`graphfix.analysis.numeric`), which
knows float semantics: ``Exp``, ``Softplus`` and ``Sigmoid`` are non-negative
but not positive (they underflow to exactly 0).  Mask and provenance facts
(``mask_like``, ``data_only``) are structural: they say where a weight comes
from, which the interval alone does not.
"""
from __future__ import annotations

from graphfix.analysis.absval import semantics
from graphfix.analysis.consts import const_value
from graphfix.analysis.dtypes import DT_BOOL, out_dtype
from graphfix.analysis.numeric import Numeric
from graphfix.analysis.reach import Reach
from graphfix.core.optypes import VARIABLE_OPS

PASS_THROUGH = frozenset({"Identity", "Snapshot", "StopGradient", "PreventGradient", "Reshape", "Squeeze",
                          "ExpandDims", "Transpose", "Tile", "Switch", "RefSwitch", "Enter", "RefEnter", "Exit",
                          "RefExit", "ReverseV2", "Slice", "StridedSlice", "BroadcastTo", "EnsureShape",
                          "CheckNumerics"})
GATHERS = frozenset({"Gather", "GatherV2", "GatherNd", "ResourceGather"})
LEARNED_SOURCES = frozenset(VARIABLE_OPS) | {"ReadVariableOp"}  # where a trained value comes from
RANDOM_OPS = frozenset({"RandomUniform", "RandomStandardNormal", "TruncatedNormal", "RandomUniformInt",
                        "ParameterizedTruncatedNormal", "Multinomial", "RandomShuffle", "RandomGamma",
                        "RandomPoisson", "RandomPoissonV2"})


class Ranges:
    def __init__(self, ir, numeric: Numeric | None = None):
        self.ir = ir
        self.numeric = numeric if numeric is not None else Numeric(ir)
        self._masks: dict = {}
        # per node: does a variable or a random op feed it (on demand, kept across edits)
        self._prov = Reach(ir, self._learned_source, back=True)

    def _learned_source(self, name: str) -> bool:
        op = self.ir.op(name)
        return op in LEARNED_SOURCES or op in RANDOM_OPS

    def carry(self, touched, numeric: Numeric) -> None:
        """After edits that touched only ``touched``: keep what they cannot
        have changed, over ``numeric`` (the same analysis, carried too)."""
        self.numeric = numeric
        self._masks = {}
        self._prov.carry(touched)

    def value(self, t):
        return self.numeric.value(t)

    def nonneg(self, t) -> bool:
        """Every element of ``t`` is >= 0."""
        return self.numeric.value(t).nonneg

    def positive(self, t) -> bool:
        """Every element of ``t`` is > 0 (and cannot underflow to 0)."""
        return self.numeric.value(t).positive

    def bounded_above(self, t) -> bool:
        """``t`` cannot be large enough to overflow ``Exp`` in its dtype."""
        v = self.numeric.value(t)
        return v.hi <= semantics(out_dtype(self.ir, *t)).exp_over

    # ------------------------------------------------------------ counts and masks
    def mask_like(self, t) -> bool:
        """A 0/1 (or 0/positive) weight built from a boolean or one-hot."""
        memo = self._masks
        if t in memo:
            return memo[t]
        memo[t] = False  # a loop back to itself proves nothing
        ir = self.ir
        op = ir.op(t[0])
        ins = ir.inputs(t[0])
        r = False
        if op == "Cast":
            r = out_dtype(ir, *ins[0]) == DT_BOOL or self.mask_like(ins[0])
        elif op in ("OneHot", "SequenceMask"):
            r = True
        elif op in PASS_THROUGH or op in GATHERS:
            r = bool(ins) and self.mask_like(ins[0])
        elif op in ("Select", "SelectV2"):
            r = self.mask_like(ins[1]) and self.mask_like(ins[2])
        elif op == "Const":
            v = const_value(ir, t[0]) if t[1] == 0 else None
            r = v is not None and bool(((v == 0) | (v == 1)).all())
        elif op == "Mul":
            r = self.mask_like(ins[0]) and self.mask_like(ins[1])
        memo[t] = r
        return r

    def data_only(self, t) -> bool:
        """``t`` is computed from feeds and constants only — labels, masks,
        weights: no variable and no random op upstream."""
        return not self._prov(t[0])
