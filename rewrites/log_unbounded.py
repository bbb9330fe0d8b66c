"""GF009 log-unbounded (report-only; clamp as an unsafe fix)."""
from __future__ import annotations

from graphfix.analysis.dtypes import is_float
from graphfix.guards import clone_with
from graphfix.passes import Rule
from rewrites.log_probability import TINY


class LogUnbounded(Rule):
    """GF009 log-unbounded

    What it does:
        Reports ``Log`` (``Log1p``) on the loss path whose argument has no
        lower-bound fact: nothing shows it is > 0 (> -1), it is not a
        probability GF005 rewrites, and no where guards it.  A mask (GF006)
        does not count: the kept elements can still reach 0.

    Why is this bad:
        log(0) = -inf and log(x < 0) = NaN; one batch that reaches the edge
        makes the loss and gradients non-finite.

    Example:
        nll = -tf.math.log(predicted_rate)     # a ReLU output can be exactly 0

    Fix:
        None by default (the right repair depends on the model: softplus,
        an epsilon, a log-domain formula).  With ``--unsafe-fixes``:
        ``log(maximum(x, tiny))`` with the smallest normal float.

    Fix safety:
        Unsafe: values below ``tiny`` are clamped and their gradient is 0.
    """

    code = "GF009"
    name = "log-unbounded"
    safety = "unsafe"
    summary = "log of a value with no lower bound (report; clamp with --unsafe-fixes)"
    guards = ("clamp",)

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        r = facts.ranges
        res = []
        for name in facts.nodes_of("Log", "Log1p"):
            op = ir.op(name)
            if not is_float(ir, name) or not facts.feeds_loss(name):
                continue
            x = ir.input(name, 0)
            # A where (GF003) keeps the argument in its domain; a mask (GF006)
            # only removes the masked-out elements, so the rest still counts.
            if name in ctx.domain_covered or (r.positive(x) if op == "Log" else r.nonneg(x)):
                continue
            res.append(self.finding(ctx, name, f"{op} of {x[0]}, which nothing bounds below: "
                                    "log(0) = -inf", guard="clamp"))
        return res

    def fix(self, ctx, finding):
        ir = ctx.ir
        node = finding.node
        x_t = ir.input(node, 0)
        op = ir.op(node)

        def build(b):
            x = b.input(x_t)
            tiny = TINY.get(x.dtype.as_datatype_enum, 1e-37)
            floor = b.tf.constant(tiny if op == "Log" else -1.0 + 1e-7, x.dtype, name="floor")
            return clone_with(b, node, {0: b.tf.maximum(x, floor, name="clamped")})[0]

        return self.replace_node(ctx, node, build)
