"""Helpers the transfer functions share, and the fallbacks (:func:`unknown`, :func:`same`)."""
from __future__ import annotations

import dataclasses
import math

from graphfix.analysis.absval import ASSUMED, INF, NO, REACHABLE, TOP, AbsVal, fl, semantics


def carried(*ins: AbsVal) -> dict:
    """Flags every element-wise result inherits from its inputs."""
    return {"nan": any(v.nan for v in ins), "empty": any(v.empty for v in ins),
            "learned": any(v.learned for v in ins), "data": any(v.data for v in ins)}


def provenance(x: AbsVal) -> dict:
    """The flags of one input an element-wise result keeps besides ``nan``
    (which the caller decides): emptiness and where the value comes from."""
    return {"empty": x.empty, "data": x.data, "learned": x.learned}


def bound_flags(v: AbsVal) -> AbsVal:
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
    return bound_flags(dataclasses.replace(TOP, **dict(carried(*ins), empty=ins[0].empty)))


def same(ev, name, ins) -> AbsVal:
    """Output 0 has the value of input 0 (reshapes, identities, slices, gathers)."""
    return ins[0] if ins else TOP


def mul_bounds(a: AbsVal, b: AbsVal, dtype) -> tuple[float, float]:
    cands = []
    for x in (a.lo, a.hi):
        for y in (b.lo, b.hi):
            if (x == 0 and math.isinf(y)) or (y == 0 and math.isinf(x)):
                cands.append(0.0)
            else:
                cands.append(x * y)
    return fl(min(cands), dtype), fl(max(cands), dtype)


def divide(ev, name, a: AbsVal, b: AbsVal, no_nan: bool = False) -> AbsVal:
    dt = ev.dtype(name)
    b_zero = b.lo <= 0 <= b.hi and b.zero != NO
    if b.lo > 0 or b.hi < 0 or (not b_zero and b.lo >= 0 and b.hi > 0) or (not b_zero and b.hi <= 0):
        blo = b.lo if b.lo != 0 else semantics(dt).tiny
        bhi = b.hi if b.hi != 0 else -semantics(dt).tiny
        inv = AbsVal(lo=1 / bhi if not math.isinf(bhi) else 0.0, hi=1 / blo if not math.isinf(blo) else 0.0)
        if blo < 0 < bhi:
            inv = TOP
        lo, hi = mul_bounds(a, inv, dt)
        zero = a.zero if a.lo <= 0 <= a.hi else NO
        if lo <= 0 <= hi and zero == NO:
            zero = ASSUMED  # x / huge underflows
        return bound_flags(AbsVal(lo=lo, hi=hi, zero=zero if lo <= 0 <= hi else NO, nan=a.nan or b.nan,
                                   inf=a.inf or (math.isinf(lo) or math.isinf(hi)) and blo < 1 and
                                   not (math.isinf(a.lo) or math.isinf(a.hi)),
                                   empty=a.empty or b.empty, data=a.data or b.data, learned=a.learned or b.learned))
    born = b.zero == REACHABLE
    if no_nan:
        return bound_flags(AbsVal(lo=-INF, hi=INF, zero=REACHABLE if born else ASSUMED, nan=a.nan or b.nan,
                                   inf=a.inf, empty=a.empty or b.empty, data=a.data or b.data,
                                   learned=a.learned or b.learned))
    sign_lo = 0.0 if a.nonneg and b.nonneg else -INF  # a ratio of non-negatives stays >= 0
    return AbsVal(lo=sign_lo, hi=INF, zero=max(a.zero, ASSUMED) if a.may_be_zero() else ASSUMED,
                  nan=a.nan or b.nan or (born and a.may_be_zero()), inf=a.inf or born, empty=a.empty or b.empty,
                  data=a.data or b.data, learned=a.learned or b.learned)
