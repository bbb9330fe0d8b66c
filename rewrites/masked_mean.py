"""GF010 masked-mean."""
from __future__ import annotations

from graphfix.analysis.matcher import Pattern, match
from graphfix.analysis.structure import strip
from graphfix.engine.passes import Rule

# reduce_mean(where(mask, loss, 0)): the where zeroes the invalid elements but
# the mean still counts them.
_ZERO = Pattern("*", "zero")
MASKED_MEAN = Pattern("Mean", "mean", [Pattern("Select|SelectV2", "where", [Pattern("*", "mask"),
                                                                           Pattern("*", "values"), _ZERO])])


def _domain_guard(ir, facts, mask, values) -> bool:
    """The where tests the very values its kept side is computed from
    (``where(d > 0, sqrt(d), 0)``, ``where(y != 0, err / y, 0)``): 0 is the
    term's value where the test fails, not a masked-out element."""
    tested = [f.tensor[0] for f in facts.numeric.facts(mask, True)]
    return any(t == values[0] or ir.has_path(t, values[0]) for t in tested)


class MaskedMean(Rule):
    """GF010 masked-mean

    What it does:
        Reports ``tf.reduce_mean(tf.where(mask, loss, 0))``: a mean over a
        tensor whose masked-out elements were set to 0.  Not when the where
        tests the values the kept side is computed from
        (``where(d > 0, sqrt(d), 0)``): there 0 is the term's own value.

    Why is this bad:
        The mean divides by every element, the masked ones included, so the
        term shrinks as padding grows, although code like this usually means
        "average only over the valid elements" (the article's Example 2).  It
        is not NaN, it is silently wrong: long padded batches train with a
        smaller loss and smaller gradients.

    Example:
        loss = tf.reduce_mean(tf.where(valid, per_token, tf.zeros_like(per_token)))

    Fix:
        None by default (the mean over everything may be intended).  With
        ``--unsafe-fixes``: ``sum(where(mask, loss, 0)) / maximum(count(mask), 1)``
        over the same axes — the mean over the valid elements, 0 when there
        are none.

    Fix safety:
        Unsafe: it changes the value (and the gradients) whenever an element
        is masked out; it is the same when none is.
    """

    code = "GF010"
    name = "masked-mean"
    safety = "unsafe"
    summary = "reduce_mean(where(mask, x, 0)) averages over the masked-out zeros too (report; fix with --unsafe-fixes)"
    guards = ("masked-mean",)
    needs = "loss"

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        res = []
        for name in self.sites(ctx, "Mean"):
            m = match(ir, MASKED_MEAN, name)
            if m is None or facts.numeric.scalar(m["zero"]) != 0.0:
                continue
            if facts.numeric.value(m["mask"]).lo == facts.numeric.value(m["mask"]).hi:
                continue  # a constant condition masks nothing away
            if _domain_guard(ir, facts, m["mask"], m["values"]):
                continue
            res.append(self.finding(ctx, name, f"mean over {m['where'][0]}, which sets the elements where "
                                    f"{m['mask'][0]} is false to 0 and still counts them", guard="masked-mean"))
        return res

    def fix(self, ctx, finding):
        ir = ctx.ir
        mean = finding.node
        where, axes_t = ir.inputs(mean)[:2]
        mask_t = strip(ir, ir.input(strip(ir, where)[0], 0))

        def build(b):
            tf = b.tf
            x, axes, mask = b.input(where), b.input(axes_t), b.input(mask_t)
            keep = ir.attr(mean, "keep_dims")
            keepdims = bool(keep.b) if keep is not None else False
            valid = tf.cast(tf.broadcast_to(mask, tf.shape(x)), x.dtype, name="valid")
            total = tf.reduce_sum(x, axis=axes, keepdims=keepdims, name="total")
            count = tf.reduce_sum(valid, axis=axes, keepdims=keepdims, name="count")
            return tf.math.truediv(total, tf.maximum(count, tf.ones([], x.dtype)), name="masked_mean")

        return self.replace_node(ctx, mean, build)
