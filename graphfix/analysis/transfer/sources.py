"""Transfer functions of ops that make values: constants, placeholders, variables, dataset ops, random draws."""
from __future__ import annotations

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
    interval,
    join,
    top_for,
)


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
    (training can drive it anywhere, 0 included), not for moving averages.
    A trained float weight takes a continuum of values: it is exactly 0 only
    by coincidence (COINCIDENT); counters and statistics stay ASSUMED."""
    dt = ev.dtype(name)
    trained = ev.trained(name)
    if trained and dt not in INT_LIMITS:
        return top_for(dt, learned=True, zero=COINCIDENT)
    return top_for(dt, learned=trained)


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
