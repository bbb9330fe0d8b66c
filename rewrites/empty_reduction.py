"""GF001 empty-reduction."""
from __future__ import annotations

from graphfix.analysis.dtypes import is_float
from graphfix.analysis.structure import size_source, strip
from graphfix.engine.guards import div_no_nan
from graphfix.engine.passes import Rule

SOURCE_NAMES = {"Where": "tf.boolean_mask / tf.where", "DynamicPartition": "tf.dynamic_partition",
                "ListDiff": "tf.setdiff1d"}


class EmptyReduction(Rule):
    """GF001 empty-reduction

    What it does:
        Finds a ``Mean`` over a tensor that can have no elements at run time:
        the output of ``tf.boolean_mask`` (``Where`` -> ``GatherV2``), a
        ``tf.dynamic_partition`` part, a gather by data-dependent indices —
        and the hand-written mean ``tf.reduce_sum(x) / tf.size(x)`` over one.

        Opt-in (``--select GF001`` or ``--select ALL``): whether a selection
        can be empty is a fact of the data (anchor matching that gives every
        ground-truth box an anchor, a sampler that keeps negatives), which
        the graph does not hold.  On 335 real graph files 1 of its 3
        findings was true, under the 90 % a default rule must keep.

    Why is this bad:
        The mean of nothing is 0/0 = NaN (tensorflow/tensorflow#3510).  One
        batch with no positive anchor, or no row for a task, makes the loss
        NaN; every gradient that reads the loss term's value (the weight of
        the term, a loss scale, a moving average) turns NaN and the optimizer
        writes NaN into the variables.

    Example:
        pos = tf.boolean_mask(box_loss, labels > 0)
        loss = cls_loss + tf.reduce_mean(pos)     # NaN when no label > 0

    Fix:
        ``cond`` (default): ``tf.cond(tf.size(pos) > 0, lambda: tf.reduce_mean(pos), lambda: 0)``
        as v1 Switch/Merge — only the taken branch runs, so an empty batch
        computes no NaN at all, forward or backward.
        ``where`` (``--guard where``, and inside while loops):
        ``tf.where(tf.size(pos) > 0, tf.reduce_mean(pos), 0)``.
        A hand-written ``sum / size`` becomes ``tf.math.divide_no_nan``.
        The term contributes 0 when empty.  Training graphs get the gradient
        of the guarded term spliced into their existing gradient subgraph.

    Fix safety:
        Safe.  When the tensor is not empty the very same ``Mean`` op runs on
        the same input, so loss and gradients are bit-for-bit unchanged.
    """

    code = "GF001"
    default = False  # opt-in under issue 11's noise policy (see the docstring)
    name = "empty-reduction"
    safety = "safe"
    summary = "mean over a possibly empty tensor (boolean_mask, dynamic_partition) is NaN"
    guards = ("cond", "where")

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        res = []
        for name in facts.nodes_of("RealDiv", "Div", "Mean"):
            if ir.op(name) in ("RealDiv", "Div") and is_float(ir, name) and facts.feeds_loss(name):
                x = self._sum_over_size(ir, name)
                if x is not None and facts.may_be_empty(x) and facts.nan_reaches_loss((name, 0)):
                    res.append(self.finding(
                        ctx, name, f"sum over size of {x[0]}, which is empty when {self._source(ir, facts, x)} selects "
                                   "nothing: 0/0 = NaN", guard="div_no_nan"))
                continue
            if ir.op(name) != "Mean":
                continue
            x = ir.input(name, 0)
            if not is_float(ir, name) or not facts.feeds_loss(name) or not facts.may_be_empty(x):
                continue
            # NaN born here (the mean of nothing) that no guard downstream removes:
            # a cond or where on size(x) > 0 around it, or a use of its shape only.
            if not facts.numeric.value((name, 0)).nan or not facts.nan_reaches_loss((name, 0)):
                continue
            src = self._source(ir, facts, x)
            res.append(self.finding(
                ctx, name, f"mean over {x[0]}, which is empty when {src} selects nothing: the term is NaN",
                guard=self.pick_guard(ctx, name)))
        return res

    @staticmethod
    def _sum_over_size(ir, name):
        """``x`` if ``name`` is ``Sum(x) / count(x)`` (a hand-written mean)."""
        num, den = (strip(ir, t) for t in ir.inputs(name)[:2])
        if ir.op(num[0]) != "Sum":
            return None
        x = strip(ir, ir.input(num[0], 0))
        return x if size_source(ir, den) == x else None

    @staticmethod
    def _source(ir, facts, x) -> str:
        """The op that makes ``x`` possibly empty (followed back along may-be-empty inputs)."""
        seen = set()
        stack = [x]
        while stack:
            t = stack.pop()
            if t[0] in seen:
                continue
            seen.add(t[0])
            if ir.op(t[0]) in SOURCE_NAMES:
                return f"{SOURCE_NAMES[ir.op(t[0])]} ({t[0]})"
            stack.extend(s for s in ir.inputs(t[0]) if facts.may_be_empty(s))
        return "the selection"

    def fix(self, ctx, finding):
        ir = ctx.ir
        if ir.op(finding.node) != "Mean":
            return self.replace_node(ctx, finding.node, div_no_nan(finding.node))
        mean = finding.node
        x_t, axes_t = ir.inputs(mean)[:2]
        style = finding.guard

        def build(b):
            tf = b.tf
            x, axes = b.input(x_t), b.input(axes_t)
            nonempty = tf.greater(tf.size(x, out_type=tf.int64), tf.constant(0, tf.int64), name="nonempty")
            if style == "cond":
                return tf.compat.v1.cond(
                    nonempty,
                    lambda: b.clone(mean, [x, axes])[0],
                    lambda: tf.zeros_like(b.clone(mean, [x, axes])[0]),
                    name="cond")
            value = b.clone(mean, [x, axes])[0]
            return tf.where(nonempty, value, tf.zeros_like(value), name="guarded")

        return self.replace_node(ctx, mean, build)
