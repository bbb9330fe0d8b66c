"""The abstract value of a tensor, and float semantics per dtype.

An :class:`AbsVal` over-approximates every element of a tensor on every run:

* ``lo``/``hi`` — an interval in the tensor's dtype (``±inf`` when unbounded);
* ``zero`` — can an element be exactly 0?  ``NO`` (never); ``COINCIDENT``
  (only by coincidence: two continuous quantities that nothing ties together
  happen to be equal — a learned output and a fed target, a trained weight
  sitting exactly on 0; an element of the interval, never a point the value
  has any weight on); ``ASSUMED`` (only if an input of unknown value — a fed
  placeholder, an untrained variable — itself takes an exact value: a
  zero-padded row, a target equal to a bound the other side attains, the
  same item fed twice); ``REACHABLE`` (ordinary inputs get there: a mask's
  false entries, an empty sum, a ReLU, a constant, float underflow of a
  value the graph bounds below, a saturated sigmoid).  A sum or difference is
  0 at a level no higher than both sides reach 0 together, unless the two
  sides meet on a value they both attain (``lo_hit``/``hi_hit``) or compute
  the same function of the data (see ``Numeric.congruent``);
* ``nan`` / ``inf`` — can an element be NaN / ±inf with ordinary inputs (an
  unbounded interval alone is not ``inf``: it says no bound is known);
* ``empty`` — can the tensor have no elements;
* ``lo_hit``/``hi_hit`` — is the bound *attained* by ordinary inputs (a
  sigmoid saturating at exactly 1, a constant, ``x - max(x)`` at its max);
* ``data`` — an infinite bound comes from fed data (placeholders, input
  pipelines) through ops that do not bound it; ``learned`` — from variables;
* ``ones`` — the value is the exp of ``x - reduce_max(x)`` (each slice holds
  an exact 1), with the max's reduction ``axes`` (a relational fact).

Everything is immutable; transfer functions make new values.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

NO, COINCIDENT, ASSUMED, REACHABLE = 0, 1, 2, 3
INF = math.inf

# DataType enum -> numpy float type (bfloat16 has float32's exponent range).
_FLOAT_NP = {1: np.float32, 2: np.float64, 19: np.float16, 14: np.float32}


@dataclasses.dataclass(frozen=True)
class FloatSemantics:
    """Where exp/sigmoid/softmax saturate for one float dtype."""

    max: float  # largest finite value
    tiny: float  # smallest positive value TF's CPU kernels keep (denormals flushed)
    exp_over: float  # exp(x) is inf above this
    exp_under: float  # exp(x) is exactly 0 below this
    sigmoid_one: float  # sigmoid(x) rounds to exactly 1 above this
    eps: float  # spacing just below 1


def _semantics(np_type, one_ulp_below: float) -> FloatSemantics:
    fi = np.finfo(np_type)
    mx, tiny = float(fi.max), float(fi.tiny)
    # sigmoid(x) = 1 / (1 + e^-x) rounds to 1 once e^-x < half the spacing below 1.
    return FloatSemantics(max=mx, tiny=tiny, exp_over=math.log(mx), exp_under=math.log(tiny),
                          sigmoid_one=-math.log(one_ulp_below / 2), eps=one_ulp_below)


SEMANTICS = {
    1: _semantics(np.float32, 2.0 ** -24),
    2: _semantics(np.float64, 2.0 ** -53),
    19: _semantics(np.float16, 2.0 ** -11),
    14: dataclasses.replace(_semantics(np.float32, 2.0 ** -9), sigmoid_one=-math.log(2.0 ** -9 / 2)),
}
INT_LIMITS = {3: (-2.0 ** 31, 2.0 ** 31 - 1), 9: (-2.0 ** 63, 2.0 ** 63 - 1), 4: (0.0, 255.0),
              5: (-32768.0, 32767.0), 6: (-128.0, 127.0), 17: (0.0, 65535.0), 22: (0.0, 2.0 ** 32 - 1),
              23: (0.0, 2.0 ** 64 - 1), 10: (0.0, 1.0)}


def semantics(dtype) -> FloatSemantics:
    """Float semantics of ``dtype`` (float32's for anything unknown)."""
    return SEMANTICS.get(dtype, SEMANTICS[1])


def fl(v: float, dtype) -> float:
    """``v`` rounded to ``dtype`` (absorption: ``fl(1 + 1e-10) == 1`` in float32)."""
    np_type = _FLOAT_NP.get(dtype)
    if np_type is None or math.isinf(v) or math.isnan(v):
        return v
    with np.errstate(over="ignore"):
        r = float(np_type(v))
    return r


def outward(lo: float, hi: float, dtype, ulps: int = 2) -> tuple[float, float]:
    """``[lo, hi]`` widened by a few ulps of ``dtype``: transcendental kernels
    (exp, log, …) are not correctly rounded, so a bound computed in float64
    may sit an ulp inside the value TensorFlow computes.  Exact values of
    these functions (exp(0) = 1, log(1) = 0) are kept."""
    np_type = _FLOAT_NP.get(dtype, np.float32)
    with np.errstate(over="ignore"):
        if not math.isinf(lo) and lo not in (0.0, 1.0):
            v = np_type(lo)
            for _ in range(ulps):
                v = np.nextafter(v, np_type(-np.inf))
            lo = float(v)
        if not math.isinf(hi) and hi not in (0.0, 1.0):
            v = np_type(hi)
            for _ in range(ulps):
                v = np.nextafter(v, np_type(np.inf))
            hi = float(v)
    return lo, hi


@dataclasses.dataclass(frozen=True)
class AbsVal:
    lo: float = -INF
    hi: float = INF
    zero: int = ASSUMED
    nan: bool = False
    inf: bool = False
    empty: bool = False
    lo_hit: bool = False
    hi_hit: bool = False
    data: bool = False
    learned: bool = False
    ones: tuple | None = None

    # ------------------------------------------------------------ queries
    @property
    def positive(self) -> bool:
        """Every non-NaN element is > 0 (a NaN from upstream is reported where it is born)."""
        return self.lo > 0 or (self.lo >= 0 and self.zero == NO)

    @property
    def nonneg(self) -> bool:
        """Every non-NaN element is >= 0."""
        return self.lo >= 0

    @property
    def finite(self) -> bool:
        return not self.nan and not self.inf

    def reaches_zero(self) -> bool:
        """Ordinary inputs make an element exactly 0."""
        return self.zero == REACHABLE and self.lo <= 0 <= self.hi

    def may_be_zero(self) -> bool:
        return self.zero != NO and self.lo <= 0 <= self.hi

    def exactly_zero(self) -> bool:
        """An element is exactly 0 when an input takes an exact value (or with
        ordinary inputs), not only by the coincidence of continuous values."""
        return self.zero >= ASSUMED and self.lo <= 0 <= self.hi

    def attained(self) -> set:
        """The finite bounds the value attains (a point it sits on with positive probability)."""
        res = set()
        if self.lo_hit and not math.isinf(self.lo):
            res.add(self.lo)
        if self.hi_hit and not math.isinf(self.hi):
            res.add(self.hi)
        return res

    def __repr__(self) -> str:
        flags = [k for k in ("nan", "inf", "empty", "data", "learned") if getattr(self, k)]
        z = ("no", "coincident", "assumed", "reachable")[self.zero]
        return f"AbsVal([{self.lo:g}, {self.hi:g}] zero={z}{' ' + ' '.join(flags) if flags else ''})"


TOP = AbsVal()
BOTTOM_EMPTY = AbsVal(lo=INF, hi=-INF, zero=NO, empty=True)


def exact(values, dtype=None) -> AbsVal:
    """The value of a constant (numpy array)."""
    v = np.asarray(values)
    if v.size == 0:
        return AbsVal(lo=0.0, hi=0.0, zero=NO, empty=True)
    if v.dtype.kind == "b":
        v = v.astype(np.int8)
    if v.dtype.kind not in "fiu":
        return TOP
    with np.errstate(invalid="ignore"):
        f = v.astype(np.float64)
        nan = bool(np.isnan(f).any())
        fin = f[~np.isnan(f)]
    if fin.size == 0:
        return AbsVal(lo=-INF, hi=INF, zero=NO, nan=True)
    lo, hi = float(fin.min()), float(fin.max())
    return AbsVal(lo=lo, hi=hi, zero=REACHABLE if bool((fin == 0).any()) else NO, nan=nan,
                  inf=bool(np.isinf(fin).any()), lo_hit=True, hi_hit=True)


def interval(lo: float, hi: float, zero: int | None = None, **kw) -> AbsVal:
    """An interval; ``zero`` defaults to REACHABLE if it holds 0 with a finite bound on
    that side, ASSUMED if it holds 0 only through an infinite bound, else NO."""
    if math.isnan(lo):
        lo = -INF
    if math.isnan(hi):
        hi = INF
    if zero is None:
        zero = NO if not (lo <= 0 <= hi) else ASSUMED
    elif not (lo <= 0 <= hi):
        zero = NO
    return AbsVal(lo=lo, hi=hi, zero=zero, **kw)


def join(*vals: AbsVal) -> AbsVal:
    """The least value covering all of ``vals`` (relational facts dropped unless shared)."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return TOP
    if len(vals) == 1:
        return vals[0]
    lo = min(v.lo for v in vals)
    hi = max(v.hi for v in vals)
    ones = vals[0].ones if all(v.ones == vals[0].ones for v in vals) else None
    return AbsVal(lo=lo, hi=hi, zero=max(v.zero for v in vals), nan=any(v.nan for v in vals),
                  inf=any(v.inf for v in vals), empty=any(v.empty for v in vals),
                  lo_hit=any(v.lo_hit and v.lo == lo for v in vals),
                  hi_hit=any(v.hi_hit and v.hi == hi for v in vals),
                  data=any(v.data for v in vals), learned=any(v.learned for v in vals), ones=ones)


def top_for(dtype, **kw) -> AbsVal:
    """The unknown value of a tensor of ``dtype`` (integer types keep their range)."""
    if dtype in INT_LIMITS:
        lo, hi = INT_LIMITS[dtype]
        return AbsVal(**{"lo": lo, "hi": hi, "zero": ASSUMED, **kw})
    return AbsVal(**kw)
