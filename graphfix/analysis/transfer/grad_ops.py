"""Transfer functions of the gradient ops TensorFlow emits (SqrtGrad, RsqrtGrad,
ReciprocalGrad, the bounded activations' *Grad)."""
from __future__ import annotations

from graphfix.analysis.absval import (
    INF,
    REACHABLE,
    AbsVal,
    exact,
    join,
)
from graphfix.analysis.transfer.binary import mul
from graphfix.analysis.transfer.common import bound_flags, divide
from graphfix.analysis.transfer.unary import neg


def sqrt_grad(ev, name, ins) -> AbsVal:
    """dy * 0.5 / y: inf where y is 0, NaN where dy is 0 there too."""
    y, dy = ins[:2]
    return divide(ev, name, mul(ev, name, [dy, exact([0.5])]), y)


def rsqrt_grad(ev, name, ins) -> AbsVal:
    """-0.5 * dy * y^3: overflows where y is inf (x was 0)."""
    y, dy = ins[:2]
    c = mul(ev, name, [mul(ev, name, [y, y]), y])
    return mul(ev, name, [c, dy])


def reciprocal_grad(ev, name, ins) -> AbsVal:
    y, dy = ins[:2]
    return neg(ev, name, [mul(ev, name, [mul(ev, name, [y, y]), dy])])


def bounded_grad(ev, name, ins) -> AbsVal:
    """SigmoidGrad/TanhGrad/ReluGrad…: dy times a bounded factor.  SigmoidGrad and
    TanhGrad take (y, dy); the activations' others take (gradients, features)."""
    dy = ins[1] if len(ins) > 1 and ev.op(name) in ("SigmoidGrad", "TanhGrad") else ins[0]
    return bound_flags(AbsVal(lo=-INF if dy.lo < 0 else 0.0, hi=INF if dy.hi > 0 else 0.0, zero=REACHABLE,
                               nan=any(v.nan for v in ins), inf=dy.inf, empty=dy.empty, data=dy.data,
                               learned=dy.learned))


def leaky_relu_grad(ev, name, ins) -> AbsVal:
    """LeakyReluGrad(dy, x) = dy where x > 0, alpha * dy elsewhere: with alpha > 0
    never a zero factor, so 0 exactly where dy is (a ReLU's gradient is 0 on its
    whole negative side, a leaky ReLU's is not)."""
    dy = ins[0]
    a = ev.ir.attr(name, "alpha")
    alpha = a.f if a is not None else 0.2
    if not alpha > 0:
        return bounded_grad(ev, name, ins)
    return join(dy, mul(ev, name, [dy, exact([alpha])]))


def broadcast_args(ev, name, ins):
    return [AbsVal(lo=0.0, hi=INF, zero=REACHABLE), AbsVal(lo=0.0, hi=INF, zero=REACHABLE)]
