"""GF003 where-nan-gradient."""
from __future__ import annotations

from graphfix.analysis.cones import where_sites
from graphfix.engine.guards import clone_with, sanitize
from graphfix.engine.passes import Rule


class WhereGradient(Rule):
    """GF003 where-nan-gradient

    What it does:
        Finds a ``tf.where`` (``Select``/``SelectV2``) whose branch computes a
        function with a restricted domain — ``Log``, ``Log1p``, ``Sqrt``,
        ``Rsqrt``, ``Reciprocal``, a division, ``Pow``, ``Acos``/``Asin``/
        ``Atanh``, ``Exp`` — on elements that the where then discards.

    Why is this bad:
        The forward value is fine, but the gradient is not: the where sends a
        zero upstream gradient to the discarded elements, and the chain rule
        multiplies it by the derivative there, which is inf: 0 * inf = NaN
        (tensorflow/tensorflow#2540, #38349; the tf.where docstring).  The
        NaN gradient reaches every variable.  TF 2.21's CPU kernels happen to
        hide it for ``Sqrt``/``Rsqrt``/``Reciprocal``; TF 1.x kernels and XLA
        do not, so those count too.

    Example:
        entropy = tf.where(p > 0, p * tf.math.log(p), tf.zeros_like(p))

    Fix:
        The double where: every singular input of the branch is itself
        guarded by the same condition, with an in-domain constant where the
        branch is discarded —
        ``tf.where(p > 0, p * tf.math.log(tf.where(p > 0, p, 1)), 0)``.

        Reported only where a gradient is taken (the graph holds a
        ``tf.gradients`` subgraph that differentiates the op, or ``--loss``
        names the loss): ``tf.metrics``' ``where(count > 0, total / count, 0)``
        in an evaluation graph is fine.  A branch the numeric analysis shows
        stays in the op's domain (``where(p > 0, log(where(p > 0, p, 1)), 0)``)
        is not a hazard.

    Fix safety:
        Safe.  The inner where only changes elements the outer where throws
        away, so the loss is bit-for-bit unchanged and so are the gradients
        of the kept elements; the discarded ones get 0 instead of NaN.
    """

    code = "GF003"
    name = "where-nan-gradient"
    safety = "safe"
    summary = "tf.where over log/sqrt/div/pow/exp of discarded elements gives NaN gradients"
    guards = ("where",)
    needs = "gradient"

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        res = []
        for name in self.sites(ctx, "Select", "SelectV2"):
            found = where_sites(ir, facts, name)
            if not found:
                continue
            ctx.covered.update(n for _, sites in found for n, _, _ in sites)
            ctx.domain_covered.update(n for _, sites in found for n, _, _ in sites)
            ops = sorted({f"{ir.op(n)} ({n})" for _, sites in found for n, _, _ in sites})
            res.append(self.finding(ctx, name, "tf.where computes " + ", ".join(ops) +
                                    " on elements it discards: their gradient is 0 * inf = NaN",
                                    guard="double-where"))
        return res

    def fix(self, ctx, finding):
        ir = ctx.ir
        select = finding.node
        v1 = ir.op(select) == "Select"
        added = []
        for pos, sites in where_sites(ir, ctx.facts, select):
            for node, inpos, safe in sites:
                cond_t = ir.input(select, 0)
                x_t = ir.inputs(node)[inpos]

                def build(b, node=node, inpos=inpos, safe=safe, keep=pos == 1, cond_t=cond_t, x_t=x_t):
                    x_safe = sanitize(b, b.input(cond_t), b.input(x_t), safe, keep, v1)
                    return clone_with(b, node, {inpos: x_safe})[0]

                added += self.replace_node(ctx, node, build)
        return added
