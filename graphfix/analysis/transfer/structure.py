"""Transfer functions of reductions and of ops that move values around
(concat, gather, pad, where, matmul, softmax, control flow, …)."""
from __future__ import annotations

import dataclasses
import math

from graphfix.analysis.absval import (
    ASSUMED,
    COINCIDENT,
    INF,
    NO,
    REACHABLE,
    TOP,
    AbsVal,
    interval,
    join,
    semantics,
)
from graphfix.analysis.shapes import static_shape
from graphfix.analysis.transfer.common import bound_flags, unknown
from graphfix.analysis.transfer.unary import boolean, cast, neg, sqrt, square


def reduce_sum(ev, name, ins) -> AbsVal:
    x = ins[0]
    keeps = ev.keeps_empty(name)
    empty_out = x.empty and keeps is not False
    zero = x.zero if x.lo <= 0 <= x.hi else NO
    if x.empty and keeps is not True:
        zero = REACHABLE  # the sum of nothing is 0
    if x.nonneg:
        lo, hi = 0.0 if (x.empty or x.lo == 0) else x.lo, INF if x.hi > 0 else 0.0
        peak = None if x.empty else ev.softmax_peak(name)
        if x.ones is not None and ev.reduces_axes(name, x.ones):
            lo, zero = 1.0, NO  # sum(exp(x - max(x))) >= 1
        elif peak is not None:
            lo, zero = max(lo, peak), NO  # a softmax row's sum is >= its largest probability >= 1/n
        elif x.lo > 0 and not x.empty:
            zero = NO
        return AbsVal(lo=lo, hi=hi, zero=zero if lo <= 0 else NO, nan=x.nan, inf=x.inf, empty=empty_out,
                      data=x.data and hi == INF, learned=x.learned and hi == INF)
    if x.hi <= 0:
        return dataclasses.replace(neg(ev, name, [reduce_sum(ev, name, [neg(ev, name, [x])])]), empty=empty_out)
    return AbsVal(lo=-INF, hi=INF, zero=max(zero, COINCIDENT), nan=x.nan, inf=x.inf, empty=empty_out, data=x.data,
                  learned=x.learned)


def reduce_mean(ev, name, ins) -> AbsVal:
    x = ins[0]
    keeps = ev.keeps_empty(name)
    empty_out = x.empty and keeps is not False
    nan = x.nan or (x.empty and keeps is not True)  # 0/0 over no elements
    zero = x.zero if x.lo <= 0 <= x.hi else NO
    if x.lo < 0 < x.hi:
        zero = max(zero, COINCIDENT)  # terms of both signs cancel only by coincidence
    return bound_flags(AbsVal(lo=x.lo, hi=x.hi, zero=zero, nan=nan, inf=x.inf, empty=empty_out, data=x.data,
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


_THROUGH = ("Identity", "Snapshot", "Enter", "RefEnter", "Cast")


def strided_slice(ev, name, ins) -> AbsVal:
    """A slice keeps its input's value, except one that picks a single element
    of a packed vector (``tf.stack([0, 0, h, w])[2]``, through ``Enter`` and
    ``Cast``): that element's value, not the join of every packed one."""
    x = ins[0]
    ir = ev.ir
    args = ir.inputs(name)
    if len(args) < 4 or any(ev.ir.attr(name, k) is not None and ev.ir.attr(name, k).i
                            for k in ("begin_mask", "ellipsis_mask", "new_axis_mask")):
        return x
    shrink = ev.ir.attr(name, "shrink_axis_mask")
    begin, strides = ev.const(args[1][0]), ev.const(args[3][0])
    if shrink is None or not shrink.i & 1 or begin is None or strides is None or begin.size < 1 \
            or strides.size < 1 or int(strides.reshape(-1)[0]) != 1:
        return x
    casts, t = [], args[0]
    while ev.op(t[0]) in _THROUGH:
        if ev.op(t[0]) == "Cast":
            casts.append(t[0])
        t = ir.inputs(t[0])[0]
    axis = ev.ir.attr(t[0], "axis")
    if ev.op(t[0]) != "Pack" or (axis is not None and axis.i != 0):
        return x
    packed = ir.inputs(t[0])
    i = int(begin.reshape(-1)[0])
    i = i + len(packed) if i < 0 else i
    if not 0 <= i < len(packed):
        return x
    v = ev.value(packed[i])
    for c in reversed(casts):
        v = cast(ev, c, [v])
    return v


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
    """A sum of products: 0 when one side zeroes every term (a dropped or
    zero-padded row), otherwise only where terms of both signs cancel."""
    a, b = ins[:2]
    base = unknown(ev, name, ins[:2])
    za = a.zero if a.lo <= 0 <= a.hi else NO
    zb = b.zero if b.lo <= 0 <= b.hi else NO
    if a.nonneg and b.nonneg:  # non-negative products underflow
        return dataclasses.replace(base, lo=0.0, zero=max(za, zb, ASSUMED))
    return dataclasses.replace(base, zero=max(za, zb, COINCIDENT))


def softmax(ev, name, ins) -> AbsVal:
    """[0, 1]; exactly 0 once a logit is ~88-104 below the row's max (a confident model).

    Logits in a bounded interval (a softmax over sigmoid or tanh outputs)
    cannot get that far apart: each entry is ``exp(x - max) / sum`` with
    ``exp(x - max) >= exp(lo - hi)`` and a sum of at most n terms <= 1, so
    it is >= ``exp(lo - hi) / n`` over n classes; positive when that stays
    a normal number of the dtype."""
    x = ins[0]
    r = AbsVal(lo=0.0, hi=1.0, zero=REACHABLE, nan=x.nan or x.inf, empty=x.empty, lo_hit=True, hi_hit=True)
    shape = static_shape(ev.ir, (name, 0))
    n = shape[-1] if shape else -1
    dt = ev.dtype(name)
    if n > 0 and dt is not None and not r.nan and not (math.isinf(x.lo) or math.isinf(x.hi)):
        sem = semantics(dt)
        if x.lo - x.hi > sem.exp_under:
            floor = math.exp(x.lo - x.hi) / n / 2  # half, for the rounding of the sum
            if floor >= sem.tiny:
                r = dataclasses.replace(r, lo=floor, zero=NO, lo_hit=False)
    return r


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
