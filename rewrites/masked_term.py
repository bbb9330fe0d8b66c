"""GF006 masked-nan-term."""
from __future__ import annotations

from graphfix.analysis.cones import mask_sites
from graphfix.engine.guards import clone_with, sanitize
from graphfix.engine.passes import Rule


class MaskedTerm(Rule):
    """GF006 masked-nan-term

    What it does:
        Finds a product ``weight * term`` where the weight is a mask or a
        label from the data (0 for padding, for the wrong class, for a
        masked-out element) and the term computes ``Log``, a division,
        ``Sqrt``, ``Pow``… of values that are invalid exactly where the weight
        is 0 — the masked loss ``mask * -log(p)``.

    Why is this bad:
        Masking by multiplication does not remove a non-finite term:
        0 * inf = NaN in the loss, and the gradient of the masked-out element
        is 0 * inf = NaN as well (``multiply_no_nan`` fixes only the forward).

    Example:
        nll = tf.reduce_sum(mask * -tf.math.log(p))   # p == 0 where mask == 0

    Fix:
        The double where keyed on the weight: every singular input of the
        term becomes ``tf.where(weight != 0, x, safe)`` with an in-domain
        constant (1 for log/sqrt/div, 0 for exp), so the masked-out elements
        compute a finite term that the zero weight then removes.

    Fix safety:
        Safe.  Where the weight is non-zero nothing changes (bit-for-bit);
        where it is 0 the product was 0 (or NaN) and is now exactly 0, with a
        0 gradient.
    """

    code = "GF006"
    name = "masked-nan-term"
    safety = "safe"
    summary = "mask * term where the term is undefined exactly where the mask is 0 (0 * inf = NaN)"
    guards = ("where",)
    needs = "gradient"

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        res = []
        for name in self.sites(ctx, "Mul"):
            found = [(w, t, [s for s in sites if s[0] not in ctx.covered])
                     for w, t, sites in mask_sites(ir, facts, name)]
            found = [f for f in found if f[2]]  # a site GF003's double where covers is not counted twice
            if not found:
                continue
            wpos, _, sites = found[0]
            ctx.covered.update(n for _, _, ss in found for n, _, _ in ss)
            ops = sorted({f"{ir.op(n)} ({n})" for n, _, _ in sites})
            res.append(self.finding(ctx, name, f"weights {ir.inputs(name)[wpos][0]} by a term computing "
                                    + ", ".join(ops) + " that can be undefined where the weight is 0: "
                                    "0 * inf = NaN", guard="double-where"))
        return res

    def fix(self, ctx, finding):
        ir = ctx.ir
        mul = finding.node
        added = []
        for wpos, _, sites in mask_sites(ir, ctx.facts, mul):
            w_t = ir.inputs(mul)[wpos]
            for node, inpos, safe in sites:
                x_t = ir.inputs(node)[inpos]

                def build(b, node=node, inpos=inpos, safe=safe, x_t=x_t):
                    tf = b.tf
                    w = b.input(w_t)
                    keep = tf.not_equal(w, tf.zeros([], w.dtype), name="weight_nonzero")
                    return clone_with(b, node, {inpos: sanitize(b, keep, b.input(x_t), safe, True, False)})[0]

                added += self.replace_node(ctx, node, build)
            break
        return added
