"""Transfer functions of binary element-wise ops (arithmetic, division, min/max, pow, select, comparisons, …)."""
from __future__ import annotations

import dataclasses
import math

from graphfix.analysis.absval import (
    ASSUMED,
    COINCIDENT,
    INF,
    INT_LIMITS,
    NO,
    REACHABLE,
    TOP,
    AbsVal,
    exact,
    fl,
    join,
)
from graphfix.analysis.transfer.common import bound_flags, divide, mul_bounds, provenance, unknown
from graphfix.analysis.transfer.unary import boolean, log, neg, sqrt, square


def add(ev, name, ins) -> AbsVal:
    dt = ev.dtype(name)
    vals = ins if ev.op(name) == "AddN" else ins[:2]
    if not vals:
        return TOP
    acc = vals[0]
    for b in vals[1:]:
        acc = _add2(acc, b, dt)
    if acc.lo <= 0 and ev.eps_where_zero(name):
        # x + eps * cast(x == 0): x >= 0 with the zeros moved to eps > 0
        acc = dataclasses.replace(acc, lo=max(acc.lo, 0.0), zero=NO)
    return acc


def _add2(a: AbsVal, b: AbsVal, dt, meet: int = NO) -> AbsVal:
    """``a + b``.  Its zero level: two continuous values that nothing ties
    together are equal only by coincidence (a learned output and a fed
    target), so the sum is 0 at a level no higher than the one at which both
    sides are 0 together (two masks, two ReLUs: REACHABLE; a zero-padded row
    of two feeds: ASSUMED), unless the sides meet on a point: a value both
    attain (``1 - sigmoid(z)`` at saturation, a label against a saturated
    output: REACHABLE); a free side against a value the other side attains
    or another free side (ASSUMED) — fed data holds exact round values (a
    target of exactly 1 against ``tanh``), and a value computed from trained
    weights alone is pulled by training onto the point it is fitted to;
    integers; or ``meet`` (the caller's relational fact: the same function
    of the data, see ``Numeric.congruent``).  A learned function *of the
    data* (``x @ W + b``) is free in neither sense."""
    lo, hi = fl(a.lo + b.lo, dt) if not (a.lo == -INF and b.lo == INF) else -INF, \
        fl(a.hi + b.hi, dt) if not (a.hi == INF and b.hi == -INF) else INF
    if math.isnan(lo):
        lo = -INF
    if math.isnan(hi):
        hi = INF
    za = a.zero if a.lo <= 0 <= a.hi else NO
    zb = b.zero if b.lo <= 0 <= b.hi else NO
    if not lo <= 0 <= hi:
        zero = NO
    elif min(za, zb) == REACHABLE or a.attained() & {-v for v in b.attained()}:
        zero = REACHABLE  # both 0 together, or c + x where x attains -c
    elif (a.nonneg and b.nonneg) and (a.positive or b.positive):
        zero = NO
    else:
        fed_meets = (_free(a) and (_free(b) or b.attained())) or (_free(b) and a.attained())
        zero = max(min(za, zb), meet, ASSUMED if fed_meets or dt in INT_LIMITS else NO, COINCIDENT)
    over = (hi == INF and not (math.isinf(a.hi) or math.isinf(b.hi))) or \
        (lo == -INF and not (math.isinf(a.lo) or math.isinf(b.lo)))
    nan = a.nan or b.nan or (a.inf and b.inf)
    return bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, nan=nan, inf=a.inf or b.inf or over,
                               empty=a.empty or b.empty, data=a.data or b.data, learned=a.learned or b.learned,
                               lo_hit=a.lo_hit and b.lo_hit, hi_hit=a.hi_hit and b.hi_hit))


def _free(x: AbsVal) -> bool:
    """Unbounded fed data that nothing learned has touched, or a value of trained
    weights alone that no data reaches: either can sit on any exact value."""
    return x.data != x.learned


def sub(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    if ev.is_max_shift(name):
        # x - reduce_max(x, axes, keepdims): <= 0, and exactly 0 at each slice's max.
        return AbsVal(lo=-INF if a.lo == -INF or a.hi == INF else a.lo - a.hi, hi=0.0, zero=REACHABLE, nan=a.nan,
                      empty=a.empty, hi_hit=True, ones=ev.max_shift_axes(name))
    # x - x is 0 everywhere; two copies of one function of the data are 0 where the data repeats an item.
    r = _add2(a, neg(ev, name, [b]), ev.dtype(name), REACHABLE if ev.same_input(name) else NO)
    if r.zero < ASSUMED and r.lo <= 0 <= r.hi and ev.congruent(name):
        r = dataclasses.replace(r, zero=ASSUMED)
    return r


def mul(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    dt = ev.dtype(name)
    if ev.same_input(name):
        return square(ev, name, [a])
    lo, hi = mul_bounds(a, b, dt)
    zero = max(a.zero if a.lo <= 0 <= a.hi else NO, b.zero if b.lo <= 0 <= b.hi else NO)
    if lo <= 0 <= hi and zero == NO and (a.lo * b.lo > 0 or a.hi * b.hi > 0):
        zero = ASSUMED  # a product of tiny values underflows to 0
    zero_inf = (a.may_be_zero() and b.inf) or (b.may_be_zero() and a.inf)
    over = (math.isinf(lo) or math.isinf(hi)) and not any(math.isinf(v) for v in (a.lo, a.hi, b.lo, b.hi))
    return bound_flags(AbsVal(lo=lo, hi=hi, zero=zero if lo <= 0 <= hi else NO, nan=a.nan or b.nan or zero_inf,
                               inf=a.inf or b.inf or over, empty=a.empty or b.empty, data=a.data or b.data,
                               learned=a.learned or b.learned))


def div(ev, name, ins) -> AbsVal:
    return divide(ev, name, ins[0], ins[1])


def div_no_nan(ev, name, ins) -> AbsVal:
    return divide(ev, name, ins[0], ins[1], no_nan=True)


def mul_no_nan(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    r = mul(ev, name, [dataclasses.replace(a, nan=False, inf=False), b])
    return dataclasses.replace(r, nan=b.nan, inf=False if b.zero == REACHABLE else r.inf)


def maximum(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    lo, hi = max(a.lo, b.lo), max(a.hi, b.hi)
    zero = NO if lo > 0 else max(a.zero if a.lo <= 0 <= a.hi else NO, b.zero if b.lo <= 0 <= b.hi else NO)
    return bound_flags(AbsVal(lo=lo, hi=hi, zero=zero if lo <= 0 <= hi else NO, nan=a.nan or b.nan,
                               inf=(a.inf and b.inf) or (a.inf and a.hi == INF) or (b.inf and b.hi == INF),
                               empty=a.empty or b.empty, data=a.data or b.data, learned=a.learned or b.learned,
                               lo_hit=(a.lo_hit and a.lo == lo) or (b.lo_hit and b.lo == lo)))


def minimum(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    n = maximum(ev, name, [neg(ev, name, [a]), neg(ev, name, [b])])
    r = neg(ev, name, [n])
    zero = NO if r.hi < 0 else max(a.zero if a.lo <= 0 <= a.hi else NO, b.zero if b.lo <= 0 <= b.hi else NO)
    return dataclasses.replace(r, zero=zero if r.lo <= 0 <= r.hi else NO)


def pow_(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    dt = ev.dtype(name)
    ka = b.lo if b.lo == b.hi else None
    if ka is not None:
        if a.lo == a.hi:  # a constant power of a constant
            try:
                v = fl(a.lo ** ka, dt)
            except (OverflowError, ZeroDivisionError):
                return unknown(ev, name, ins)
            if isinstance(v, complex):
                return unknown(ev, name, ins)
            return exact([v])
        if ka == 2:
            return square(ev, name, [a])
        if ka == 0.5:
            return sqrt(ev, name, [a])
        if ka == 1:
            return a
        if a.lo >= 0 and ka > 0:
            hi = INF if math.isinf(a.hi) else fl(a.hi ** ka, dt)
            return bound_flags(AbsVal(lo=fl(a.lo ** ka, dt), hi=hi, zero=a.zero if a.lo <= 0 else NO,
                                       nan=a.nan, inf=a.inf, **provenance(a)))
        if a.lo > 0 and ka < 0:
            hi = INF if a.lo == 0 else fl(a.lo ** ka, dt)
            lo = 0.0 if math.isinf(a.hi) else fl(a.hi ** ka, dt)
            return bound_flags(AbsVal(lo=lo, hi=hi, zero=ASSUMED if lo == 0 else NO, nan=a.nan, **provenance(a)))
    if a.lo > 0 and b.lo == b.hi:
        return unknown(ev, name, ins)
    r = unknown(ev, name, ins)
    if a.lo > 0:
        return dataclasses.replace(r, lo=0.0, zero=ASSUMED)
    return r


def squared_difference(ev, name, ins) -> AbsVal:
    d = sub(ev, name, ins)
    return square(ev, name, [d])


def select(ev, name, ins) -> AbsVal:
    # The refined branches come from the evaluator (it knows the condition).
    return join(*ev.select_branches(name, ins))


def comparison(ev, name, ins) -> AbsVal:
    return boolean(ev, name, ins)


def xlogy(ev, name, ins) -> AbsVal:
    x, y = ins[:2]
    r = mul(ev, name, [x, log(ev, name, [y])])
    return dataclasses.replace(r, nan=x.nan or y.nan or (y.lo < 0 and y.zero == REACHABLE), inf=False)


def clip(ev, name, ins) -> AbsVal:
    x, lo_v, hi_v = ins[:3]
    r = minimum(ev, name, [maximum(ev, name, [x, lo_v]), hi_v])
    return dataclasses.replace(r, lo_hit=r.lo_hit or (r.lo == lo_v.lo and x.lo <= lo_v.lo),
                               hi_hit=r.hi_hit or (r.hi == hi_v.hi and x.hi >= hi_v.hi))
