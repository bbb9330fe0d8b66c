"""GF007 stop-gradient."""
from __future__ import annotations

from graphfix.core.errors import GraphfixError
from graphfix.engine.passes import Rule


class StopGradient(Rule):
    """GF007 stop-gradient

    What it does:
        Applies to the nodes you name with ``--stop-gradient NODE``: terms
        that belong in the reported loss (a metric, an eval-only regulariser,
        a monitoring term) but must not be trained on.

    Why is this bad:
        A term on the gradient path trains the model on it.  An eval-only
        metric summed into the loss pulls the weights toward the metric, and
        if it is undefined on some batches its NaN gradient reaches every
        variable.

    Example:
        loss = xent + 0.0 * recall_at_k      # still differentiated; NaN * 0 = NaN

    Fix:
        ``tf.stop_gradient`` on the named term's output, and its gradient
        scope in the training graph replaced by zeros.

    Fix safety:
        Safe by request: the forward value is unchanged; the term's gradient is
        removed because you asked for it.
    """

    code = "GF007"
    name = "stop-gradient"
    safety = "safe"
    summary = "a term named with --stop-gradient stays in the loss value but is not trained on"
    guards = ("stop_gradient",)

    def match(self, ctx):
        ir = ctx.ir
        res = []
        for t in ctx.options.get("stop_gradient") or []:
            node = t.split(":")[0].lstrip("^")
            if node not in ir:
                raise GraphfixError(f"--stop-gradient {t!r}: no such node in the graph")
            if ir.op(node) == "StopGradient":
                continue
            res.append(self.finding(ctx, node, "named with --stop-gradient: kept in the loss value, removed "
                                    "from training", guard="stop_gradient"))
        return res

    def fix(self, ctx, finding):
        node = finding.node

        def build(b):
            return b.tf.stop_gradient(b.clone(node)[0], name="stop_gradient")

        return self.replace_node(ctx, node, build)
