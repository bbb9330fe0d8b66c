"""GF004 norm-at-zero."""
from __future__ import annotations

from graphfix.analysis.consts import const_scalar
from graphfix.analysis.structure import search_up, strip
from graphfix.engine.guards import clone_with
from graphfix.engine.passes import Rule

ROOTS = ("Sqrt", "Rsqrt", "EuclideanNorm", "Pow")


_SQUARES = frozenset({"Square", "SquaredDifference", "Abs", "L2Loss"})
_SUMS = frozenset({"Sum", "Mean", "Add", "AddV2", "AddN", "Identity", "Reshape", "Squeeze", "ExpandDims", "Cast"})


def _sum_of_squares(ir, t) -> bool:
    """``t`` sums squares (``reduce_sum(square(a - b))``, ``x * x``, a mean of them)."""
    def step(op, ins):
        if op in _SQUARES or (op == "Mul" and len(ins) == 2 and strip(ir, ins[0]) == strip(ir, ins[1])):
            return True
        return (ins if op.startswith("Add") else ins[:1]) if op in _SUMS else ()

    return search_up(ir, t, step)


def _sqrt_of_exp(ir, facts, name) -> bool:
    """``sqrt(exp(x))`` where only the sqrt reads the exp: exactly ``exp(x / 2)``."""
    if ir.op(name) != "Sqrt":
        return False
    e = ir.input(name, 0)
    if ir.op(e[0]) != "Exp":
        return False
    grad = facts.grad_scopes.is_gradient_node
    return all(dst == name or grad(dst) for dst, _ in ir.consumers(e[0]))


def _fractional_pow(ir, name) -> bool:
    k = const_scalar(ir, ir.input(name, 1))
    return k is not None and 0 < k < 1


class SafeNorm(Rule):
    """GF004 norm-at-zero

    What it does:
        Finds a square root of a non-negative value that can be exactly 0:
        ``tf.norm`` (``Sqrt(Sum(Square(x)))``, ``EuclideanNorm``), a distance
        between embeddings, a standard deviation, ``Pow(s, 0.5)``,
        ``Rsqrt(sum of squares)`` in a hand-written normalisation.  A sum of
        squares counts when it is exactly 0 at least when the data is (a
        zero-padded row, the same item fed twice, a saturated output against
        round targets), not when it is 0 only by coincidence (the RMSE of a
        linear output against fed float targets).

    Why is this bad:
        sqrt'(0) is infinite: identical embeddings in a triplet or contrastive
        loss, a zero vector or a padded row give a NaN gradient (0 * inf)
        even though the forward value is a clean 0
        (tensorflow/tensorflow#12071, open since 2017; #30199 triplet loss).

    Example:
        d = tf.norm(anchor - positive, axis=1)
        loss = tf.reduce_mean(tf.maximum(d - tf.norm(anchor - negative, axis=1) + 1.0, 0))

        Also the square root of an ``exp`` that underflows to exactly 0 below
        ~-87 in float32, as in a VAE's ``eps * sqrt(exp(log_var))``: the
        non-finite gradient is born in the ``sqrt``, so that is what gets
        repaired, not the product around it.  Reported only where a gradient
        is taken.

    Fix:
        The safe norm: ``tf.where(s > 0, tf.sqrt(tf.where(s > 0, s, 1)), 0)``
        (``EuclideanNorm`` is expanded to ``Sqrt(Sum(Square(x)))`` first).
        ``sqrt(exp(x))`` read nowhere else becomes ``exp(x / 2)``: the same
        value, and a gradient that is never inf.

    Fix safety:
        Safe.  For s > 0 the same ``Sqrt`` runs on the same value, so value and
        gradient are bit-for-bit unchanged (``EuclideanNorm``: within float
        rounding, since it becomes an explicit sum of squares); at s == 0 the
        value is 0 and the gradient 0 instead of NaN.  ``exp(x / 2)`` equals
        ``sqrt(exp(x))`` within float rounding (it is exact where ``exp(x)``
        does not underflow or overflow, and finite where it does).
    """

    code = "GF004"
    name = "norm-at-zero"
    safety = "safe"
    summary = "sqrt/norm of a value that can be exactly 0 has an infinite (NaN) gradient"
    guards = ("where",)
    needs = "gradient"

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        r = facts.ranges
        res = []
        for name in self.sites(ctx, *ROOTS):
            op = ir.op(name)
            if not facts.on_gradient_path(name):
                continue
            if op == "Pow" and not _fractional_pow(ir, name):
                continue
            s = ir.input(name, 0)
            if name in ctx.covered:
                continue
            if op == "EuclideanNorm":
                # the norm of x is 0 where every element of a row is: x must be
                # exactly 0 there, not only by coincidence
                if not r.value(s).exactly_zero():
                    continue
            else:
                v = r.value(s)
                if not v.nonneg or v.positive:
                    continue
                # 0 is reached by ordinary inputs (a ReLU, an exp that underflows),
                # or the value is a sum of squares of something exactly 0 when the
                # data is (a zero-padded row, the same item fed twice) — not of
                # something 0 only by coincidence (a learned output against a target).
                if not v.reaches_zero() and not (v.exactly_zero() and _sum_of_squares(ir, s)):
                    continue
            guard = "exp-half" if _sqrt_of_exp(ir, facts, name) else "safe-norm"
            res.append(self.finding(ctx, name, f"{op} of {s[0]}, which is non-negative and can be exactly 0: "
                                    "the gradient there is inf * 0 = NaN", guard=guard))
        return res

    def fix(self, ctx, finding):
        ir = ctx.ir
        node = finding.node
        op = ir.op(node)
        if finding.guard == "exp-half":
            e = ir.input(node, 0)[0]
            x_t = ir.input(e, 0)

            def half(b):
                x = b.input(x_t)
                return b.clone(e, [b.tf.multiply(x, b.tf.constant(0.5, x.dtype), name="half")])[0]

            return self.replace_node(ctx, node, half, region=[node, e])

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
