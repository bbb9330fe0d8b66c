"""GF005 log-of-probability."""
from __future__ import annotations

from graphfix.analysis.cones import guarded_elsewhere
from graphfix.analysis.dtypes import TINY
from graphfix.analysis.probability import (
    log_group,
    pattern,
    picked_probability,
    probability_like,
    restructurable,
)
from graphfix.engine.guards import clone_with
from graphfix.engine.passes import Rule


class LogProbability(Rule):
    """GF005 log-of-probability

    What it does:
        Finds ``log`` of a probability computed by ``softmax`` or ``sigmoid``:
        ``log(softmax(z))``, ``log(sigmoid(z))``, ``log(1 - sigmoid(z))``, the
        log of a gathered class probability or of ``sum(one_hot * softmax)``.

    Why is this bad:
        Softmax and sigmoid saturate: with a logit gap above ~88-104 in
        float32 a probability is exactly 0, ``log`` gives -inf, the loss is
        inf and the gradient NaN.  GAN discriminators and confident
        classifiers get there in normal training.

        A log of one probability per example picked by a fed or sampled
        index (``log(p[action])``) is GF011's, which is opt-in: in
        policy-gradient graphs the index is an action sampled from this
        same softmax, whose probability is not 0.

    Example:
        xent = -tf.reduce_sum(y * tf.math.log(tf.nn.softmax(logits)), axis=1)
        d_loss = -tf.reduce_mean(tf.math.log(tf.sigmoid(d_real)) + tf.math.log(1 - tf.sigmoid(d_fake)))

    Fix:
        The log-domain op: ``tf.nn.log_softmax(z)`` (gathered or one-hot
        summed the same way), ``log(sigmoid(z)) = -softplus(-z)``,
        ``log(1 - sigmoid(z)) = -softplus(z)``.  When the probability has no
        such form, the unsafe fix ``log(maximum(p, tiny))`` clamps it at the
        smallest normal float (only with ``--unsafe-fixes``).

    Fix safety:
        Safe for the log-domain forms: mathematically equal, numerically equal
        within float rounding (last-ulp differences), and finite everywhere.
        The clamp is unsafe: it changes values below ``tiny`` and zeroes their
        gradient.
    """

    code = "GF005"
    name = "log-of-probability"
    safety = "safe"
    summary = "log of a softmax/sigmoid probability that can underflow to 0 (-inf loss, NaN gradient)"
    guards = ("where",)
    picked = False  # GF011 reports the logs of picked probabilities, GF005 the others

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        res = []
        covered = None
        for name in self.sites(ctx, "Log"):
            p = ir.input(name, 0)
            if facts.ranges.positive(p) or picked_probability(ir, facts.ranges, name) != self.picked:
                continue
            pat = pattern(ir, name)
            if pat is not None and not restructurable(ir, facts, log_group(ir, pat[2])):
                if covered is None:
                    covered = guarded_elsewhere(ir, facts)
                if name in covered:
                    continue  # GF003/GF006's double where guards this log
                pat = None
            if pat is not None:
                res.append(self.finding(ctx, name, f"log of {p[0]} ({pat[0].replace('_', ' ')} form) underflows "
                                        "to log(0) = -inf when the probability saturates",
                                        guard=pat[0].replace("_", "-")))
            elif probability_like(ir, p):
                res.append(self.finding(ctx, name, f"log of the probability {p[0]}, which can underflow to 0",
                                        guard="clamp", safety="unsafe"))
        return res

    def fix(self, ctx, finding):
        ir = ctx.ir
        log = finding.node
        if ir.op(log) != "Log":
            return []  # rewritten together with another log of the same probability
        pat = pattern(ir, log)
        if finding.guard == "clamp" or pat is None:
            x_t = ir.input(log, 0)

            def clamp(b):
                x = b.input(x_t)
                tiny = b.tf.constant(TINY.get(x.dtype.as_datatype_enum, 1e-37), x.dtype, name="tiny")
                return clone_with(b, log, {0: b.tf.maximum(x, tiny, name="clamped")})[0]

            return self.replace_node(ctx, log, clamp)
        group = log_group(ir, pat[2])
        region = sorted({n for _, reg, _, _ in group for n in reg}, key=ir.order.__getitem__)
        outputs = [(reg[0], 0) for _, reg, _, _ in group]
        src = pat[2]

        def build(b):
            tf = b.tf
            z = b.input(ir.input(src, 0))
            outs = []
            for kind, reg, _, extra in group:
                if kind == "log_softmax":
                    outs.append(tf.nn.log_softmax(z, name="log_softmax"))
                elif kind == "log_sigmoid":
                    outs.append(tf.negative(tf.nn.softplus(tf.negative(z)), name="log_sigmoid"))
                elif kind == "log_one_minus_sigmoid":
                    outs.append(tf.negative(tf.nn.softplus(z), name="log_one_minus_sigmoid"))
                elif kind == "gather_log_softmax":
                    ls = tf.nn.log_softmax(z, name="log_softmax")
                    outs.append(b.clone(reg[1], [ls] + [b.input(t) for t in ir.inputs(reg[1])[1:]])[0])
                else:  # onehot_log_softmax
                    ls = tf.nn.log_softmax(z, name="log_softmax")
                    mul = b.tf.multiply(b.input(extra), ls, name="onehot_log_prob")
                    outs.append(b.clone(reg[1], [mul, b.input(ir.input(reg[1], 1))])[0])
            return outs

        return self.replace_node(ctx, log, build, region=region, output=outputs)
