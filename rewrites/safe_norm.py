"""GF004 norm-at-zero."""
from __future__ import annotations

from graphfix.analysis.consts import const_scalar
from graphfix.analysis.dtypes import is_float
from graphfix.guards import clone_with
from graphfix.passes import Rule

ROOTS = ("Sqrt", "Rsqrt", "EuclideanNorm", "Pow")


def _fractional_pow(ir, name) -> bool:
    k = const_scalar(ir, ir.input(name, 1))
    return k is not None and 0 < k < 1


class SafeNorm(Rule):
    """GF004 norm-at-zero

    What it does:
        Finds a square root of a non-negative value that can be exactly 0:
        ``tf.norm`` (``Sqrt(Sum(Square(x)))``, ``EuclideanNorm``), a distance
        between embeddings, a standard deviation, ``Pow(s, 0.5)``,
        ``Rsqrt(sum of squares)`` in a hand-written normalisation.

    Why is this bad:
        sqrt'(0) is infinite: identical embeddings in a triplet or contrastive
        loss, a zero vector or a padded row give a NaN gradient (0 * inf)
        even though the forward value is a clean 0
        (tensorflow/tensorflow#12071, open since 2017; #30199 triplet loss).

    Example:
        d = tf.norm(anchor - positive, axis=1)
        loss = tf.reduce_mean(tf.maximum(d - tf.norm(anchor - negative, axis=1) + 1.0, 0))

    Fix:
        The safe norm: ``tf.where(s > 0, tf.sqrt(tf.where(s > 0, s, 1)), 0)``
        (``EuclideanNorm`` is expanded to ``Sqrt(Sum(Square(x)))`` first).

    Fix safety:
        Safe.  For s > 0 the same ``Sqrt`` runs on the same value, so value and
        gradient are bit-for-bit unchanged (``EuclideanNorm``: within float
        rounding, since it becomes an explicit sum of squares); at s == 0 the
        value is 0 and the gradient 0 instead of NaN.
    """

    code = "GF004"
    name = "norm-at-zero"
    safety = "safe"
    summary = "sqrt/norm of a value that can be exactly 0 has an infinite (NaN) gradient"
    guards = ("where",)

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        r = facts.ranges
        res = []
        for name in facts.nodes_of(*ROOTS):
            op = ir.op(name)
            if not is_float(ir, name) or not facts.feeds_loss(name):
                continue
            if op == "Pow" and not _fractional_pow(ir, name):
                continue
            s = ir.input(name, 0)
            if name in ctx.covered:
                continue
            if op == "EuclideanNorm":
                if r.positive(s):
                    continue
            elif not r.nonneg(s) or r.positive(s):
                continue
            res.append(self.finding(ctx, name, f"{op} of {s[0]}, which is non-negative and can be exactly 0: "
                                    "the gradient there is inf * 0 = NaN", guard="safe-norm"))
        return res

    def fix(self, ctx, finding):
        ir = ctx.ir
        node = finding.node
        op = ir.op(node)

        def build(b):
            tf = b.tf
            if op == "EuclideanNorm":
                x, axes = b.input(ir.input(node, 0)), b.input(ir.input(node, 1))
                keep = ir.attr(node, "keep_dims")
                s = tf.reduce_sum(tf.square(x), axis=axes, keepdims=bool(keep.b) if keep is not None else False)
                root = tf.sqrt
            else:
                s = b.input(ir.input(node, 0))
                root = None
            positive = tf.greater(s, tf.zeros([], s.dtype), name="positive")
            s_safe = tf.where(positive, s, tf.ones([], s.dtype), name="safe_input")
            value = root(s_safe) if root else clone_with(b, node, {0: s_safe})[0]
            return tf.where(positive, value, tf.zeros([], value.dtype), name="safe_norm")

        return self.replace_node(ctx, node, build)
