"""GF008 exp-overflow (report-only; clamp as an unsafe fix)."""
from __future__ import annotations

import math

from graphfix.analysis.structure import clamped_after
from graphfix.engine.guards import clamp_first_input
from graphfix.engine.passes import Rule

# A little under log(max finite) per dtype: exp() stays finite below it.
LIMIT = {1: 88.0, 2: 709.0, 19: 11.0, 14: 88.0}


class ExpOverflow(Rule):
    """GF008 exp-overflow

    What it does:
        Reports ``Exp`` of a value with no upper bound on the loss path:
        unnormalised logits in a hand-written softmax or ``log(sum(exp(x)))``,
        an exponentiated network output (a rate, a variance).

        Fires only when fed data reaches the ``exp`` through ops that do not
        bound it (placeholders, input pipelines), or the graph bounds it above
        the overflow point; not for ``exp`` of a learned variable alone
        (``exp(-s) * loss + s`` uncertainty weighting), a max-subtracted or
        ``-|x|`` argument (TensorFlow's stable softmax and sigmoid
        cross-entropy), or an ``exp`` clipped right after.

    Why is this bad:
        float32 ``exp`` overflows to inf above ~88.7; the loss becomes inf or
        NaN (inf / inf) and the gradient NaN.

    Example:
        probs = tf.exp(logits) / tf.reduce_sum(tf.exp(logits), axis=1, keepdims=True)

    Fix:
        None by default: the right repair changes the formula
        (``tf.nn.softmax``, ``tf.reduce_logsumexp``, subtracting the max).
        With ``--unsafe-fixes``: ``exp(minimum(x, 88))`` (float32; 709 for
        float64, 11 for float16).

    Fix safety:
        Unsafe: values above the limit are clamped and their gradient is 0.
        Below the limit nothing changes.
    """

    code = "GF008"
    name = "exp-overflow"
    safety = "unsafe"
    summary = "exp of an unbounded value can overflow to inf (report; clamp with --unsafe-fixes)"
    guards = ("clamp",)
    needs = "loss"

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        res = []
        for name in self.sites(ctx, "Exp"):
            x = ir.input(name, 0)
            # A where that keeps the exp's argument small (GF003's) covers it; a
            # mask (GF006) does not: the kept elements can still overflow.
            if name in ctx.domain_covered or facts.ranges.bounded_above(x) or clamped_after(ir, name):
                continue
            v = facts.ranges.value(x)
            if math.isinf(v.hi) and not v.data:
                continue  # no fed data reaches it unbounded (exp of a learned scale: uncertainty weighting)
            if not facts.nonfinite_reaches_loss((name, 0)):
                continue  # a where keeps only the elements that do not overflow
            res.append(self.finding(ctx, name, f"exp of {ir.input(name, 0)[0]}, which has no upper bound: "
                                    "overflows to inf above ~88 (float32)", guard="clamp"))
        return res

    def fix(self, ctx, finding):
        node = finding.node
        return self.replace_node(ctx, node, lambda b: clamp_first_input(
            b, node, lambda dtype: LIMIT.get(dtype, 88.0), upper=True, bound_name="limit"))
