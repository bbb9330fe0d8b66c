"""Transfer functions of unary element-wise ops (exp, log, sqrt, activations, casts, …)."""
from __future__ import annotations

import dataclasses
import math

from graphfix.analysis.absval import (
    ASSUMED,
    INF,
    NO,
    REACHABLE,
    AbsVal,
    exact,
    fl,
    interval,
    outward,
    semantics,
)
from graphfix.analysis.transfer.common import bound_flags, carried, divide, provenance


def neg(ev, name, ins) -> AbsVal:
    x = ins[0]
    return dataclasses.replace(x, lo=-x.hi, hi=-x.lo, lo_hit=x.hi_hit, hi_hit=x.lo_hit, ones=None)


def absolute(ev, name, ins) -> AbsVal:
    x = ins[0]
    if x.lo >= 0:
        return x
    hi = max(-x.lo, x.hi)
    lo = 0.0 if x.hi >= 0 else -x.hi
    return dataclasses.replace(x, lo=lo, hi=hi, lo_hit=x.lo_hit and lo > 0, hi_hit=False, ones=None)


def square(ev, name, ins) -> AbsVal:
    x = ins[0]
    a = absolute(ev, name, ins)
    dt = ev.dtype(name)
    lo, hi = fl(a.lo * a.lo, dt), fl(a.hi * a.hi, dt)
    zero = a.zero
    if lo == 0 and a.lo > 0:  # underflow of a tiny value
        zero = max(zero, ASSUMED)
    inf = x.inf or (hi == INF and not math.isinf(a.hi))
    return bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, inf=inf, **carried(x)))


def sqrt(ev, name, ins) -> AbsVal:
    x = ins[0]
    lo = math.sqrt(x.lo) if x.lo > 0 else 0.0
    hi = math.sqrt(x.hi) if x.hi > 0 else 0.0
    lo, hi = outward(lo, hi, ev.dtype(name))
    lo = max(lo, 0.0)
    return AbsVal(lo=lo, hi=hi, zero=x.zero if x.lo <= 0 else NO, nan=x.nan or x.lo < 0 and x.zero == REACHABLE,
                  inf=x.inf, lo_hit=x.lo_hit, hi_hit=x.hi_hit, **provenance(x))


def rsqrt(ev, name, ins) -> AbsVal:
    x = ins[0]
    r = reciprocal(ev, name, [sqrt(ev, name, ins)])
    return dataclasses.replace(r, nan=r.nan or (x.lo < 0 and x.zero == REACHABLE))


def reciprocal(ev, name, ins) -> AbsVal:
    return divide(ev, name, exact([1.0]), ins[0])


def exp(ev, name, ins) -> AbsVal:
    x = ins[0]
    s = semantics(ev.dtype(name))
    lo = 0.0 if x.lo < s.exp_under else fl(math.exp(x.lo), ev.dtype(name))
    hi = INF if x.hi > s.exp_over else fl(math.exp(x.hi), ev.dtype(name))
    lo, hi = outward(lo, hi, ev.dtype(name))
    lo = max(lo, 0.0)
    if x.lo >= s.exp_under:
        zero = NO
    elif not math.isinf(x.lo) or (x.data and x.learned):
        zero = REACHABLE  # a bound the graph sets, or a network output (as a softmax saturates)
    else:
        zero = ASSUMED
    inf = x.inf or (x.hi > s.exp_over and (not math.isinf(x.hi) or x.data))
    ones = None
    if x.hi == 0 and x.hi_hit and x.ones is not None:
        ones = x.ones
    return bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, inf=inf, nan=x.nan, empty=x.empty, lo_hit=zero == REACHABLE,
                               hi_hit=x.hi_hit, data=x.data, learned=x.learned, ones=ones))


def expm1(ev, name, ins) -> AbsVal:
    e = exp(ev, name, ins)
    return dataclasses.replace(e, lo=e.lo - 1, hi=e.hi - 1, zero=ins[0].zero if ins[0].lo <= 0 <= ins[0].hi else NO,
                               ones=None)


def log(ev, name, ins) -> AbsVal:
    x = ins[0]
    lo = math.log(x.lo) if x.lo > 0 else -INF
    hi = math.log(x.hi) if x.hi > 0 else -INF
    lo, hi = outward(lo, hi, ev.dtype(name))
    # Born non-finite when ordinary inputs reach the edge, a bound the graph
    # sets lies beyond it, or fed data reaches it unbounded.
    born_inf = x.lo <= 0 and (x.zero == REACHABLE or (x.data and math.isinf(x.lo)))
    born_nan = x.lo < 0 and (x.zero == REACHABLE or not math.isinf(x.lo) or x.data)
    return AbsVal(lo=lo, hi=hi, zero=ASSUMED if lo <= 0 <= hi else NO, nan=x.nan or born_nan,
                  inf=x.inf or born_inf, **provenance(x))


def log1p(ev, name, ins) -> AbsVal:
    x = ins[0]
    return log(ev, name, [dataclasses.replace(x, lo=fl(x.lo + 1, ev.dtype(name)), hi=x.hi + 1,
                                              zero=x.zero if x.lo <= -1 <= x.hi else NO)])


def bounded(lo: float, hi: float, lo_at: float = -INF, hi_at: float = INF, zero_at=None):
    """A saturating function with range [lo, hi], reaching lo below ``lo_at`` and hi above ``hi_at``."""

    def fn(ev, name, ins) -> AbsVal:
        x = ins[0]
        lo_hit = x.lo <= lo_at
        hi_hit = x.hi >= hi_at
        zero = NO
        if lo <= 0 <= hi:
            if zero_at is not None:
                zero = x.zero if x.lo <= zero_at <= x.hi else NO
            elif lo == 0:
                zero = REACHABLE if lo_hit else NO  # saturation: a confident logit gets there
        return AbsVal(lo=lo, hi=hi, zero=zero, nan=x.nan, empty=x.empty, lo_hit=lo_hit, hi_hit=hi_hit)

    return fn


def sigmoid(ev, name, ins) -> AbsVal:
    s = semantics(ev.dtype(name))
    return bounded(0.0, 1.0, s.exp_under, s.sigmoid_one)(ev, name, ins)


def tanh(ev, name, ins) -> AbsVal:
    s = semantics(ev.dtype(name))
    return bounded(-1.0, 1.0, -s.sigmoid_one / 2, s.sigmoid_one / 2, zero_at=0.0)(ev, name, ins)


def relu(ev, name, ins) -> AbsVal:
    x = ins[0]
    lo, hi = max(x.lo, 0.0), max(x.hi, 0.0)
    zero = REACHABLE if x.lo <= 0 else NO  # every non-positive input gives exactly 0
    return bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, nan=x.nan, inf=x.inf, lo_hit=x.lo <= 0, hi_hit=x.hi_hit,
                               **provenance(x)))


def relu6(ev, name, ins) -> AbsVal:
    x = ins[0]
    return AbsVal(lo=min(max(x.lo, 0.0), 6.0), hi=min(max(x.hi, 0.0), 6.0), zero=REACHABLE if x.lo <= 0 else NO,
                  nan=x.nan, empty=x.empty, lo_hit=x.lo <= 0, hi_hit=x.hi >= 6)


def elu(ev, name, ins) -> AbsVal:
    x = ins[0]
    return bound_flags(AbsVal(lo=max(x.lo, -1.0), hi=x.hi, zero=x.zero if x.lo <= 0 <= x.hi else NO, nan=x.nan,
                               inf=x.inf, **provenance(x)))


def softplus(ev, name, ins) -> AbsVal:
    x = ins[0]
    s = semantics(ev.dtype(name))
    lo = 0.0 if x.lo < s.exp_under else math.log1p(math.exp(x.lo)) if x.lo < 50 else x.lo
    hi = INF if math.isinf(x.hi) else (math.log1p(math.exp(x.hi)) if x.hi < 50 else x.hi)
    lo, hi = outward(lo, hi, ev.dtype(name))
    lo = max(lo, 0.0)
    zero = NO if x.lo >= s.exp_under else (REACHABLE if not math.isinf(x.lo) else ASSUMED)
    return bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, nan=x.nan, inf=x.inf, **provenance(x)))


def sign(ev, name, ins) -> AbsVal:
    x = ins[0]
    lo = -1.0 if x.lo < 0 else 0.0 if x.lo == 0 else 1.0
    hi = 1.0 if x.hi > 0 else 0.0 if x.hi == 0 else -1.0
    return AbsVal(lo=lo, hi=hi, zero=x.zero if lo <= 0 <= hi else NO, nan=x.nan, empty=x.empty)


def monotone(fn, zero_preserving: bool = False):
    """An increasing element-wise function (floor, ceil, round, atan, erf…)."""

    def tf_fn(ev, name, ins) -> AbsVal:
        x = ins[0]
        lo = fn(x.lo) if not math.isinf(x.lo) else x.lo if fn(-1e30) < -1 else fn(-1e300)
        hi = fn(x.hi) if not math.isinf(x.hi) else x.hi if fn(1e30) > 1 else fn(1e300)
        zero = (x.zero if zero_preserving else ASSUMED) if lo <= 0 <= hi else NO
        if not zero_preserving and lo <= 0 <= hi and not math.isinf(lo) and not math.isinf(hi):
            zero = REACHABLE  # floor/round map a whole range onto 0
        return bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, nan=x.nan, inf=x.inf, **provenance(x)))

    return tf_fn


def cast(ev, name, ins) -> AbsVal:
    x = ins[0]
    src = ev.attr_type(name, "SrcT")
    dst = ev.attr_type(name, "DstT")
    if src == 10:
        return interval(0.0, 1.0, REACHABLE, lo_hit=True, hi_hit=True, empty=x.empty)
    if dst == 10:
        return interval(0.0, 1.0, REACHABLE, empty=x.empty)
    if dst in (3, 9, 4, 5, 6, 17, 22, 23) and src in (1, 2, 14, 19):  # float -> int truncates toward 0
        lo = math.trunc(x.lo) if not math.isinf(x.lo) else x.lo
        hi = math.trunc(x.hi) if not math.isinf(x.hi) else x.hi
        return bound_flags(AbsVal(lo=lo, hi=hi, zero=REACHABLE if lo <= 0 <= hi and not (math.isinf(lo) or
                                   math.isinf(hi)) else x.zero if lo <= 0 <= hi else NO, empty=x.empty,
                                   data=x.data, learned=x.learned))
    lo, hi = fl(x.lo, dst), fl(x.hi, dst)
    zero = x.zero
    if lo == 0 and x.lo > 0:  # flushed to 0 in a narrower float
        zero = max(zero, ASSUMED)
    return dataclasses.replace(x, lo=lo, hi=hi, zero=zero, ones=x.ones)


def zeros_like(ev, name, ins) -> AbsVal:
    return AbsVal(lo=0.0, hi=0.0, zero=REACHABLE, empty=ins[0].empty if ins else False, lo_hit=True, hi_hit=True)


def ones_like(ev, name, ins) -> AbsVal:
    return AbsVal(lo=1.0, hi=1.0, zero=NO, empty=ins[0].empty if ins else False, lo_hit=True, hi_hit=True)


def boolean(ev, name, ins) -> AbsVal:
    return interval(0.0, 1.0, REACHABLE, empty=any(v.empty for v in ins))
