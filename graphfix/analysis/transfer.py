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
"""
from __future__ import annotations

import dataclasses
import math

from graphfix.analysis.absval import (
    ASSUMED,
    INF,
    INT_LIMITS,
    NO,
    REACHABLE,
    TOP,
    AbsVal,
    exact,
    fl,
    interval,
    join,
    outward,
    semantics,
    top_for,
)

# ---------------------------------------------------------------- helpers


def _carry(*ins: AbsVal) -> dict:
    """Flags every element-wise result inherits from its inputs."""
    return {"nan": any(v.nan for v in ins), "empty": any(v.empty for v in ins),
            "learned": any(v.learned for v in ins), "data": any(v.data for v in ins)}


def _bound_flags(v: AbsVal) -> AbsVal:
    """``data``/``learned`` describe infinite bounds only: a bounded value drops them."""
    if math.isinf(v.lo) or math.isinf(v.hi):
        return v
    if v.data or v.learned:
        return dataclasses.replace(v, data=False, learned=False)
    return v


def unknown(ev, name, ins) -> AbsVal:
    """No bounds known; NaN if an input may be; empty if the main (first)
    input may be — other inputs are often shapes, or empty statistics such as
    FusedBatchNorm's training-mode mean."""
    if not ins:
        return TOP
    return _bound_flags(dataclasses.replace(TOP, **dict(_carry(*ins), empty=ins[0].empty)))


def same(ev, name, ins) -> AbsVal:
    """Output 0 has the value of input 0 (reshapes, identities, slices, gathers)."""
    return ins[0] if ins else TOP


def _mul_bounds(a: AbsVal, b: AbsVal, dtype) -> tuple[float, float]:
    cands = []
    for x in (a.lo, a.hi):
        for y in (b.lo, b.hi):
            if (x == 0 and math.isinf(y)) or (y == 0 and math.isinf(x)):
                cands.append(0.0)
            else:
                cands.append(x * y)
    return fl(min(cands), dtype), fl(max(cands), dtype)


# ---------------------------------------------------------------- sources


def const(ev, name, ins) -> AbsVal:
    v = ev.const(name)
    return exact(v) if v is not None else TOP


def placeholder(ev, name, ins) -> AbsVal:
    dt = ev.dtype(name)
    at_call = ev.argument_value(name)
    if at_call is not None:  # a function's argument: what the call sites pass it
        return at_call
    return placeholder_value(ev, name, dt)


def placeholder_value(ev, name, dt) -> AbsVal:
    if dt == 10:
        return interval(0.0, 1.0, REACHABLE, lo_hit=True, hi_hit=True)
    if dt in INT_LIMITS:  # fed integers (lengths, ids, counts) are 0 on ordinary batches: padding, empty
        return top_for(dt, data=True, zero=REACHABLE)
    return top_for(dt, data=True)


def placeholder_with_default(ev, name, ins) -> AbsVal:
    return join(placeholder(ev, name, ins), ins[0]) if ins else placeholder(ev, name, ins)


def variable(ev, name, ins) -> AbsVal:
    """A variable's value is unknown; ``learned`` when an optimizer trains it
    (training can drive it anywhere, 0 included), not for moving averages."""
    dt = ev.dtype(name)
    return top_for(dt, learned=ev.trained(name))


def data_source(ev, name, ins):
    """Input pipelines: every output is fed data of unknown value."""
    return [placeholder(ev, name, ins) for _ in range(ev.num_outputs(name))]


def random_uniform(ev, name, ins) -> AbsVal:
    return interval(0.0, 1.0, REACHABLE, lo_hit=True)


def random_normal(ev, name, ins) -> AbsVal:
    return interval(-INF, INF, ASSUMED)


def truncated_normal(ev, name, ins) -> AbsVal:
    return interval(-2.0, 2.0, ASSUMED)


def random_uniform_int(ev, name, ins) -> AbsVal:
    lo, hi = ins[1], ins[2]
    return interval(lo.lo, hi.hi - 1, REACHABLE if lo.lo <= 0 else NO)


# ---------------------------------------------------------------- unary element-wise


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
    return _bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, inf=inf, **_carry(x)))


def sqrt(ev, name, ins) -> AbsVal:
    x = ins[0]
    lo = math.sqrt(x.lo) if x.lo > 0 else 0.0
    hi = math.sqrt(x.hi) if x.hi > 0 else 0.0
    lo, hi = outward(lo, hi, ev.dtype(name))
    lo = max(lo, 0.0)
    return AbsVal(lo=lo, hi=hi, zero=x.zero if x.lo <= 0 else NO, nan=x.nan or x.lo < 0 and x.zero == REACHABLE,
                  inf=x.inf, lo_hit=x.lo_hit, hi_hit=x.hi_hit, **_flags(x))


def _flags(x: AbsVal) -> dict:
    return {"empty": x.empty, "data": x.data, "learned": x.learned}


def rsqrt(ev, name, ins) -> AbsVal:
    x = ins[0]
    r = reciprocal(ev, name, [sqrt(ev, name, ins)])
    return dataclasses.replace(r, nan=r.nan or (x.lo < 0 and x.zero == REACHABLE))


def reciprocal(ev, name, ins) -> AbsVal:
    return _divide(ev, name, exact([1.0]), ins[0])


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
    return _bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, inf=inf, nan=x.nan, empty=x.empty, lo_hit=zero == REACHABLE,
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
                  inf=x.inf or born_inf, **_flags(x))


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
    return _bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, nan=x.nan, inf=x.inf, lo_hit=x.lo <= 0, hi_hit=x.hi_hit,
                               **_flags(x)))


def relu6(ev, name, ins) -> AbsVal:
    x = ins[0]
    return AbsVal(lo=min(max(x.lo, 0.0), 6.0), hi=min(max(x.hi, 0.0), 6.0), zero=REACHABLE if x.lo <= 0 else NO,
                  nan=x.nan, empty=x.empty, lo_hit=x.lo <= 0, hi_hit=x.hi >= 6)


def elu(ev, name, ins) -> AbsVal:
    x = ins[0]
    return _bound_flags(AbsVal(lo=max(x.lo, -1.0), hi=x.hi, zero=x.zero if x.lo <= 0 <= x.hi else NO, nan=x.nan,
                               inf=x.inf, **_flags(x)))


def softplus(ev, name, ins) -> AbsVal:
    x = ins[0]
    s = semantics(ev.dtype(name))
    lo = 0.0 if x.lo < s.exp_under else math.log1p(math.exp(x.lo)) if x.lo < 50 else x.lo
    hi = INF if math.isinf(x.hi) else (math.log1p(math.exp(x.hi)) if x.hi < 50 else x.hi)
    lo, hi = outward(lo, hi, ev.dtype(name))
    lo = max(lo, 0.0)
    zero = NO if x.lo >= s.exp_under else (REACHABLE if not math.isinf(x.lo) else ASSUMED)
    return _bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, nan=x.nan, inf=x.inf, **_flags(x)))


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
        return _bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, nan=x.nan, inf=x.inf, **_flags(x)))

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
        return _bound_flags(AbsVal(lo=lo, hi=hi, zero=REACHABLE if lo <= 0 <= hi and not (math.isinf(lo) or
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


# ---------------------------------------------------------------- binary element-wise


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


def _add2(a: AbsVal, b: AbsVal, dt) -> AbsVal:
    lo, hi = fl(a.lo + b.lo, dt) if not (a.lo == -INF and b.lo == INF) else -INF, \
        fl(a.hi + b.hi, dt) if not (a.hi == INF and b.hi == -INF) else INF
    if math.isnan(lo):
        lo = -INF
    if math.isnan(hi):
        hi = INF
    if not lo <= 0 <= hi:
        zero = NO
    elif a.zero == REACHABLE and b.zero == REACHABLE and a.lo <= 0 <= a.hi and b.lo <= 0 <= b.hi:
        zero = REACHABLE  # both can be 0 together (two masks, two ReLUs)
    elif _cancels(a, b):
        zero = REACHABLE  # c + x where x attains -c (1 - sigmoid(z) at saturation)
    elif (a.nonneg and b.nonneg) and (a.positive or b.positive):
        zero = NO
    else:
        zero = ASSUMED
    over = (hi == INF and not (math.isinf(a.hi) or math.isinf(b.hi))) or \
        (lo == -INF and not (math.isinf(a.lo) or math.isinf(b.lo)))
    nan = a.nan or b.nan or (a.inf and b.inf)
    return _bound_flags(AbsVal(lo=lo, hi=hi, zero=zero, nan=nan, inf=a.inf or b.inf or over,
                               empty=a.empty or b.empty, data=a.data or b.data, learned=a.learned or b.learned,
                               lo_hit=a.lo_hit and b.lo_hit, hi_hit=a.hi_hit and b.hi_hit))


def _cancels(a: AbsVal, b: AbsVal) -> bool:
    """One side is a constant c and the other attains -c at a saturated bound."""
    for c, x in ((a, b), (b, a)):
        if c.lo == c.hi and c.lo_hit:
            k = -c.lo
            if (x.lo == k and x.lo_hit) or (x.hi == k and x.hi_hit):
                return True
    return False


def sub(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    if ev.is_max_shift(name):
        # x - reduce_max(x, axes, keepdims): <= 0, and exactly 0 at each slice's max.
        return AbsVal(lo=-INF if a.lo == -INF or a.hi == INF else a.lo - a.hi, hi=0.0, zero=REACHABLE, nan=a.nan,
                      empty=a.empty, hi_hit=True, ones=ev.max_shift_axes(name))
    return _add2(a, neg(ev, name, [b]), ev.dtype(name))


def mul(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    dt = ev.dtype(name)
    if ev.same_input(name):
        return square(ev, name, [a])
    lo, hi = _mul_bounds(a, b, dt)
    zero = max(a.zero if a.lo <= 0 <= a.hi else NO, b.zero if b.lo <= 0 <= b.hi else NO)
    if lo <= 0 <= hi and zero == NO and (a.lo * b.lo > 0 or a.hi * b.hi > 0):
        zero = ASSUMED  # a product of tiny values underflows to 0
    zero_inf = (a.may_be_zero() and b.inf) or (b.may_be_zero() and a.inf)
    over = (math.isinf(lo) or math.isinf(hi)) and not any(math.isinf(v) for v in (a.lo, a.hi, b.lo, b.hi))
    return _bound_flags(AbsVal(lo=lo, hi=hi, zero=zero if lo <= 0 <= hi else NO, nan=a.nan or b.nan or zero_inf,
                               inf=a.inf or b.inf or over, empty=a.empty or b.empty, data=a.data or b.data,
                               learned=a.learned or b.learned))


def _divide(ev, name, a: AbsVal, b: AbsVal, no_nan: bool = False) -> AbsVal:
    dt = ev.dtype(name)
    b_zero = b.lo <= 0 <= b.hi and b.zero != NO
    if b.lo > 0 or b.hi < 0 or (not b_zero and b.lo >= 0 and b.hi > 0) or (not b_zero and b.hi <= 0):
        blo = b.lo if b.lo != 0 else semantics(dt).tiny
        bhi = b.hi if b.hi != 0 else -semantics(dt).tiny
        inv = AbsVal(lo=1 / bhi if not math.isinf(bhi) else 0.0, hi=1 / blo if not math.isinf(blo) else 0.0)
        if blo < 0 < bhi:
            inv = TOP
        lo, hi = _mul_bounds(a, inv, dt)
        zero = a.zero if a.lo <= 0 <= a.hi else NO
        if lo <= 0 <= hi and zero == NO:
            zero = ASSUMED  # x / huge underflows
        return _bound_flags(AbsVal(lo=lo, hi=hi, zero=zero if lo <= 0 <= hi else NO, nan=a.nan or b.nan,
                                   inf=a.inf or (math.isinf(lo) or math.isinf(hi)) and blo < 1 and
                                   not (math.isinf(a.lo) or math.isinf(a.hi)),
                                   empty=a.empty or b.empty, data=a.data or b.data, learned=a.learned or b.learned))
    born = b.zero == REACHABLE
    if no_nan:
        return _bound_flags(AbsVal(lo=-INF, hi=INF, zero=REACHABLE if born else ASSUMED, nan=a.nan or b.nan,
                                   inf=a.inf, empty=a.empty or b.empty, data=a.data or b.data,
                                   learned=a.learned or b.learned))
    sign_lo = 0.0 if a.nonneg and b.nonneg else -INF  # a ratio of non-negatives stays >= 0
    return AbsVal(lo=sign_lo, hi=INF, zero=max(a.zero, ASSUMED) if a.may_be_zero() else ASSUMED,
                  nan=a.nan or b.nan or (born and a.may_be_zero()), inf=a.inf or born, empty=a.empty or b.empty,
                  data=a.data or b.data, learned=a.learned or b.learned)


def div(ev, name, ins) -> AbsVal:
    return _divide(ev, name, ins[0], ins[1])


def div_no_nan(ev, name, ins) -> AbsVal:
    return _divide(ev, name, ins[0], ins[1], no_nan=True)


def mul_no_nan(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    r = mul(ev, name, [dataclasses.replace(a, nan=False, inf=False), b])
    return dataclasses.replace(r, nan=b.nan, inf=False if b.zero == REACHABLE else r.inf)


def maximum(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    lo, hi = max(a.lo, b.lo), max(a.hi, b.hi)
    zero = NO if lo > 0 else max(a.zero if a.lo <= 0 <= a.hi else NO, b.zero if b.lo <= 0 <= b.hi else NO)
    return _bound_flags(AbsVal(lo=lo, hi=hi, zero=zero if lo <= 0 <= hi else NO, nan=a.nan or b.nan,
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
            return _bound_flags(AbsVal(lo=fl(a.lo ** ka, dt), hi=hi, zero=a.zero if a.lo <= 0 else NO,
                                       nan=a.nan, inf=a.inf, **_flags(a)))
        if a.lo > 0 and ka < 0:
            hi = INF if a.lo == 0 else fl(a.lo ** ka, dt)
            lo = 0.0 if math.isinf(a.hi) else fl(a.hi ** ka, dt)
            return _bound_flags(AbsVal(lo=lo, hi=hi, zero=ASSUMED if lo == 0 else NO, nan=a.nan, **_flags(a)))
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


# ---------------------------------------------------------------- reductions and structure


def reduce_sum(ev, name, ins) -> AbsVal:
    x = ins[0]
    keeps = ev.keeps_empty(name)
    empty_out = x.empty and keeps is not False
    zero = x.zero if x.lo <= 0 <= x.hi else NO
    if x.empty and keeps is not True:
        zero = REACHABLE  # the sum of nothing is 0
    if x.nonneg:
        lo, hi = 0.0 if (x.empty or x.lo == 0) else x.lo, INF if x.hi > 0 else 0.0
        if x.ones is not None and ev.reduces_axes(name, x.ones):
            lo, zero = 1.0, NO  # sum(exp(x - max(x))) >= 1
        elif x.lo > 0 and not x.empty:
            zero = NO
        return AbsVal(lo=lo, hi=hi, zero=zero if lo <= 0 else NO, nan=x.nan, inf=x.inf, empty=empty_out,
                      data=x.data and hi == INF, learned=x.learned and hi == INF)
    if x.hi <= 0:
        return dataclasses.replace(neg(ev, name, [reduce_sum(ev, name, [neg(ev, name, [x])])]), empty=empty_out)
    return AbsVal(lo=-INF, hi=INF, zero=max(zero, ASSUMED), nan=x.nan, inf=x.inf, empty=empty_out, data=x.data,
                  learned=x.learned)


def reduce_mean(ev, name, ins) -> AbsVal:
    x = ins[0]
    keeps = ev.keeps_empty(name)
    empty_out = x.empty and keeps is not False
    nan = x.nan or (x.empty and keeps is not True)  # 0/0 over no elements
    zero = x.zero if x.lo <= 0 <= x.hi else NO
    if x.lo < 0 < x.hi:
        zero = max(zero, ASSUMED)
    return _bound_flags(AbsVal(lo=x.lo, hi=x.hi, zero=zero, nan=nan, inf=x.inf, empty=empty_out, data=x.data,
                               learned=x.learned))


def reduce_extreme(ev, name, ins) -> AbsVal:
    x = ins[0]
    keeps = ev.keeps_empty(name)
    empty_out = x.empty and keeps is not False
    r = dataclasses.replace(x, empty=empty_out, ones=None)
    if x.empty and keeps is not True:  # the reducer's identity: lowest/highest float
        r = join(r, interval(-semantics(ev.dtype(name)).max, semantics(ev.dtype(name)).max, NO))
    elif ev.op(name) == "Max" and not x.empty and r.hi > 0:
        peak = ev.softmax_peak(name)  # a softmax row's largest probability is >= 1/n
        if peak is not None:
            r = dataclasses.replace(r, lo=max(r.lo, peak), zero=NO, lo_hit=False)
    return r


def reduce_prod(ev, name, ins) -> AbsVal:
    x = ins[0]
    if x.nonneg:
        lo = 0.0 if x.lo < 1 else x.lo
        hi = x.hi if x.hi <= 1 else INF
        zero = REACHABLE if x.zero == REACHABLE else ASSUMED if lo == 0 else NO
        return AbsVal(lo=lo, hi=hi, zero=zero, nan=x.nan, inf=x.inf,
                      empty=x.empty and ev.keeps_empty(name) is not False,
                      data=x.data and hi == INF, learned=x.learned and hi == INF)
    return unknown(ev, name, ins)


def euclidean_norm(ev, name, ins) -> AbsVal:
    s = reduce_sum(ev, name, [square(ev, name, ins[:1])])
    return sqrt(ev, name, [s])


def l2_loss(ev, name, ins) -> AbsVal:
    s = reduce_sum(ev, name, [square(ev, name, ins[:1])])
    return dataclasses.replace(s, empty=False)


def count(ev, name, ins) -> AbsVal:
    """Size/Shape/Rank: non-negative integers; 0 only for a tensor that may be empty."""
    x = ins[0] if ins else TOP
    return AbsVal(lo=0.0, hi=INF, zero=REACHABLE if x.empty else NO)


def shape_n(ev, name, ins):
    return [count(ev, name, [x]) for x in ins]


def concat(ev, name, ins) -> AbsVal:
    op = ev.op(name)
    vals = ins[:-1] if op == "ConcatV2" else ins[1:] if op == "Concat" else ins
    if not vals:
        return TOP
    r = join(*vals)
    return dataclasses.replace(r, empty=all(v.empty for v in vals), ones=None)


def pack(ev, name, ins) -> AbsVal:
    if not ins:
        return TOP
    return dataclasses.replace(join(*ins), empty=all(v.empty for v in ins), ones=None)


def split(ev, name, ins):
    x = ins[1] if ev.op(name) == "Split" else ins[0]
    return [x] * ev.num_outputs(name)


def unpack(ev, name, ins):
    return [ins[0]] * ev.num_outputs(name)


def gather(ev, name, ins) -> AbsVal:
    params, idx = ins[0], ins[1]
    return dataclasses.replace(params, empty=params.empty or idx.empty, ones=None)


def fill(ev, name, ins) -> AbsVal:
    dims, value = ins[0], ins[1]
    return dataclasses.replace(value, empty=dims.zero == REACHABLE, lo_hit=True, hi_hit=True)


def one_hot(ev, name, ins) -> AbsVal:
    on, off = ins[2], ins[3]
    r = join(on, off)
    return dataclasses.replace(r, empty=ins[0].empty, lo_hit=True, hi_hit=True)


def pad(ev, name, ins) -> AbsVal:
    x = ins[0]
    value = ins[2] if ev.op(name) == "PadV2" and len(ins) > 2 else AbsVal(lo=0.0, hi=0.0, zero=REACHABLE)
    return dataclasses.replace(join(x, value), empty=x.empty, ones=None)


def where_indices(ev, name, ins) -> AbsVal:
    return AbsVal(lo=0.0, hi=INF, zero=REACHABLE, empty=True)


def dynamic_partition(ev, name, ins):
    x = ins[0]
    return [dataclasses.replace(x, empty=True, ones=None)] * ev.num_outputs(name)


def set_diff(ev, name, ins):
    return [dataclasses.replace(ins[0], empty=True), AbsVal(lo=0.0, hi=INF, zero=REACHABLE, empty=True)]


def unique(ev, name, ins):
    x = ins[0]
    outs = [x, AbsVal(lo=0.0, hi=INF, zero=REACHABLE, empty=x.empty)]
    return outs + [AbsVal(lo=1.0, hi=INF, zero=NO, empty=x.empty)] * (ev.num_outputs(name) - 2)


def top_k(ev, name, ins):
    x = ins[0]
    return [x, AbsVal(lo=0.0, hi=INF, zero=REACHABLE, empty=x.empty)]


def arg_index(ev, name, ins) -> AbsVal:
    return AbsVal(lo=0.0, hi=INF, zero=REACHABLE, empty=ins[0].empty and ev.keeps_empty(name) is not False)


def range_(ev, name, ins) -> AbsVal:
    """``range(start, limit)``: empty when ordinary inputs make the limit reach
    the start (a count of a possibly empty tensor), not for ``range(batch)``."""
    start, limit = ins[0], ins[1]
    lo, hi = min(start.lo, limit.lo), max(start.hi, limit.hi)
    empty = limit.empty or (limit.zero == REACHABLE and start.hi >= 0) or limit.hi <= start.lo
    return interval(lo, hi, REACHABLE if lo <= 0 <= hi else NO, empty=empty)


def matmul(ev, name, ins) -> AbsVal:
    a, b = ins[:2]
    base = unknown(ev, name, ins[:2])
    if a.nonneg and b.nonneg:  # a sum of non-negative products: 0 when one side zeroes every term
        return dataclasses.replace(base, lo=0.0, zero=max(a.zero, b.zero, ASSUMED))
    return base


def softmax(ev, name, ins) -> AbsVal:
    """[0, 1]; exactly 0 once a logit is ~88-104 below the row's max (a confident model)."""
    x = ins[0]
    return AbsVal(lo=0.0, hi=1.0, zero=REACHABLE, nan=x.nan or x.inf, empty=x.empty, lo_hit=True, hi_hit=True)


def log_softmax(ev, name, ins) -> AbsVal:
    x = ins[0]
    return AbsVal(lo=-INF, hi=0.0, zero=ASSUMED, nan=x.nan or x.inf, empty=x.empty, hi_hit=True)


def xent(ev, name, ins):
    logits = ins[0]
    return [AbsVal(lo=0.0, hi=INF, zero=ASSUMED, nan=logits.nan or logits.inf, empty=logits.empty),
            AbsVal(lo=-1.0, hi=1.0, zero=REACHABLE, nan=logits.nan or logits.inf, empty=logits.empty)]


def merge(ev, name, ins):
    return [ev.merge_value(name, ins), AbsVal(lo=0.0, hi=INF, zero=REACHABLE)]


def switch(ev, name, ins):
    return ev.switch_branches(name, ins)


def functional_call(ev, name, ins):
    """If/PartitionedCall: what the called body computes (see Numeric.call_outputs)."""
    outs = ev.call_outputs(name, ins)
    return outs if outs else unknown(ev, name, ins[1:] if ev.op(name) in ("If", "StatelessIf") else ins)


def identity_n(ev, name, ins):
    return list(ins)


def in_top_k(ev, name, ins) -> AbsVal:
    return boolean(ev, name, ins)


# ---------------------------------------------------------------- gradient ops


def sqrt_grad(ev, name, ins) -> AbsVal:
    """dy * 0.5 / y: inf where y is 0, NaN where dy is 0 there too."""
    y, dy = ins[:2]
    return _divide(ev, name, mul(ev, name, [dy, exact([0.5])]), y)


def rsqrt_grad(ev, name, ins) -> AbsVal:
    """-0.5 * dy * y^3: overflows where y is inf (x was 0)."""
    y, dy = ins[:2]
    c = mul(ev, name, [mul(ev, name, [y, y]), y])
    return mul(ev, name, [c, dy])


def reciprocal_grad(ev, name, ins) -> AbsVal:
    y, dy = ins[:2]
    return neg(ev, name, [mul(ev, name, [mul(ev, name, [y, y]), dy])])


def bounded_grad(ev, name, ins) -> AbsVal:
    """SigmoidGrad/TanhGrad/ReluGrad…: dy times a bounded factor."""
    dy = ins[1] if len(ins) > 1 else ins[0]
    return _bound_flags(AbsVal(lo=-INF if dy.lo < 0 else 0.0, hi=INF if dy.hi > 0 else 0.0, zero=REACHABLE,
                               nan=any(v.nan for v in ins), inf=dy.inf, empty=dy.empty, data=dy.data,
                               learned=dy.learned))


def broadcast_args(ev, name, ins):
    return [AbsVal(lo=0.0, hi=INF, zero=REACHABLE), AbsVal(lo=0.0, hi=INF, zero=REACHABLE)]


# ---------------------------------------------------------------- the table

_SAME = ("Identity", "Snapshot", "StopGradient", "PreventGradient", "Reshape", "Squeeze", "ExpandDims", "Transpose",
         "Tile", "Slice", "StridedSlice", "ReverseV2", "BroadcastTo", "EnsureShape", "CheckNumerics", "Enter",
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
    "LeakyReluGrad": bounded_grad, "BroadcastGradientArgs": broadcast_args,
})
