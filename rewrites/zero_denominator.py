"""GF002 zero-denominator."""
from __future__ import annotations

from graphfix.analysis.dtypes import is_float
from graphfix.analysis.structure import search_up, size_source, strip
from graphfix.engine.guards import div_no_nan
from graphfix.engine.passes import Rule

DIVISIONS = ("RealDiv", "Div")
NORMS = ("Sqrt", "EuclideanNorm")


def denominator_kind(ir, facts, num, den) -> str | None:
    """Why ``den`` can be exactly 0 on an ordinary batch — a count, a mask sum, a
    norm, a learned scale, an underflow — or None when the analysis shows it
    cannot (or can only if an input of unknown value is itself exactly 0, like
    a ``keep_prob`` placeholder)."""
    r = facts.ranges
    v = r.value(den)
    if v.positive or not v.may_be_zero():
        return None
    d = strip(ir, den)
    while ir.op(d[0]) in ("Cast", "Identity"):
        d = strip(ir, ir.input(d[0], 0))
    op = ir.op(d[0])
    src = size_source(ir, d)
    if src is not None:
        return "an element count" if facts.may_be_empty(src) else None
    if op in NORMS and r.nonneg(ir.input(d[0], 0) if op == "Sqrt" else d):
        return "a norm"
    if op in ("Sum", "Mean"):
        m = ir.input(d[0], 0)
        if r.mask_like(m):
            return "a mask sum"
        if (r.nonneg(m) or r.data_only(m)) and _factor_of(ir, num, m):
            return "the sum of weights that also scale the numerator"
        if ir.op(strip(ir, m)[0]) == "Mul":
            factors = ir.inputs(strip(ir, m)[0])[:2]
            if any(r.mask_like(f) for f in factors):
                return "a masked sum (every weight can be 0)"
    if v.learned and not v.data:
        return "a learned scale that training can drive to 0"
    if v.reaches_zero():
        return f"a value the analysis shows can be exactly 0 ({op} {d[0]})"
    return None


def _factor_of(ir, num, m) -> bool:
    """``m`` multiplies into the numerator (``sum(x * m) / sum(m)``)."""
    if num is None:
        return False

    def step(op, ins):
        if op in ("Sum", "Mean", "Mul", "Identity", "Reshape", "Neg", "Cast"):
            return ins if op == "Mul" else ins[:1]
        return ()

    return search_up(ir, num, step, goal=m)


class ZeroDenominator(Rule):
    """GF002 zero-denominator

    What it does:
        Finds a division whose denominator is a count that can be 0: the sum
        of a mask (``tf.sequence_mask``, ``tf.cast(labels > 0)``,
        ``tf.math.count_nonzero``), the sum of the weights that also scale
        the numerator, the size of a possibly empty tensor, a vector norm
        (``x / tf.norm(x)``), a learned scale (``x / w``), or any value the
        numeric analysis shows reaches exactly 0 (a ReLU output, an ``exp``
        that underflows).  Also ``x * tf.math.reciprocal(count)``.  Not a
        division by something that is 0 only if a fed hyperparameter is
        (``x / keep_prob``), nor a max-subtracted softmax's sum (>= 1).

        Opt-in (``--select GF002`` or ``--select ALL``): whether a mask or a
        weight sums to 0 on some batch is a fact of the data (Keras feeding
        sample weights of ones, a labelling that keeps a count positive),
        which the graph does not hold.  On 335 real graph files 6 of its 10
        findings were true, under the 90 % a default rule must keep.

    Why is this bad:
        On an all-padding batch (or an empty mask, or a zero vector) the
        division is 0/0 = NaN in the loss, and ``RealDiv``'s gradient
        ``-x / y**2`` is NaN too, so one such batch writes NaN into the
        variables.

    Example:
        mask = tf.cast(tf.sequence_mask(lengths, T), tf.float32)
        loss = tf.reduce_sum(xent * mask) / tf.reduce_sum(mask)

    Fix:
        ``tf.math.divide_no_nan(num, den)`` (``DivNoNan``;
        ``reciprocal_no_nan`` for ``Reciprocal``): 0 when the denominator is
        0, and its registered gradient uses ``div_no_nan`` for both partials,
        so gradients are 0 rather than NaN there.

    Fix safety:
        Safe.  Where the denominator is not 0, ``DivNoNan`` computes the same
        IEEE division, so the loss is bit-for-bit unchanged and gradients agree
        to the last bit (``Reciprocal``: within float rounding).
    """

    code = "GF002"
    default = False  # opt-in under issue 11's noise policy (see the docstring)
    name = "zero-denominator"
    safety = "safe"
    summary = "division by a count, mask sum or norm that can be 0 (0/0 = NaN)"
    guards = ("where",)

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        res = []
        for name in facts.nodes_of(*DIVISIONS, "Reciprocal", "Inv"):
            op = ir.op(name)
            if op in DIVISIONS:
                num, den = ir.inputs(name)[:2]
            elif op in ("Reciprocal", "Inv"):
                num, den = None, ir.input(name, 0)
            else:
                continue
            if not is_float(ir, name) or not facts.feeds_loss(name):
                continue
            if name in ctx.domain_covered:
                continue  # a where (GF003's double where) keeps the denominator away from 0
            # (a mask's double where, GF006's, only protects the masked-out elements)
            why = denominator_kind(ir, facts, num, den)
            if why is None:
                continue
            if not facts.nonfinite_reaches_loss((name, 0)) and not facts.on_gradient_path(name):
                continue  # a where discards the quotient where den == 0 and no gradient flows through it
            res.append(self.finding(ctx, name, f"divides by {den[0]} ({why}), which can be 0: x/0 = inf, 0/0 = NaN",
                                    guard="div_no_nan"))
        return res

    def fix(self, ctx, finding):
        return self.replace_node(ctx, finding.node, div_no_nan(finding.node))
