"""GF009 log-unbounded (report-only; clamp as an unsafe fix)."""
from __future__ import annotations

import math

from graphfix.analysis.absval import NO
from graphfix.analysis.dtypes import TINY
from graphfix.analysis.probability import picked_probability
from graphfix.analysis.structure import clamped_after
from graphfix.engine.guards import clamp_first_input
from graphfix.engine.passes import Rule


class LogUnbounded(Rule):
    """GF009 log-unbounded

    What it does:
        Reports ``Log`` (``Log1p``) on the loss path whose argument the
        numeric analysis shows reaches 0 (-1) with ordinary inputs — a ReLU
        output, a count, ``1 - sigmoid(z)`` at saturation, a bound the graph
        sets — or gets a network output (fed data through trained weights)
        with no lower bound.  Not a log GF005 rewrites,
        one a where keeps in its domain, a log of a learned value alone, or a
        log clipped right after.  A mask (GF006) does not count: the kept
        elements can still reach 0.

        Opt-in (``--select GF009`` or ``--select ALL``): on 335 real graph
        files 1 of its 4 findings was true (the others were fed 0/1 masks
        and an ordered difference of cdfs), under the 90 % a default rule
        must keep.

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
    default = False  # opt-in under issue 11's noise policy (see the docstring)
    name = "log-unbounded"
    safety = "unsafe"
    summary = "log of a value with no lower bound (report; clamp with --unsafe-fixes)"
    guards = ("clamp",)
    needs = "loss"

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        r = facts.ranges
        res = []
        for name in self.sites(ctx, "Log", "Log1p"):
            op = ir.op(name)
            x = ir.input(name, 0)
            # A where (GF003) keeps the argument in its domain; a mask (GF006)
            # only removes the masked-out elements, so the rest still counts.
            if name in ctx.domain_covered or clamped_after(ir, name):
                continue
            if op == "Log" and picked_probability(ir, r, name):
                continue  # GF011's (opt-in): whether p[a] can be 0 depends on where a comes from
            v = r.value(x)
            edge = 0.0 if op == "Log" else -1.0
            if v.lo > edge or (v.lo == edge and (v.zero == NO if op == "Log" else False)):
                continue
            # Ordinary inputs reach the edge (a ReLU, a mask, a saturated sigmoid,
            # a bound the graph sets), or a network output (fed data through
            # trained weights) reaches it unbounded.  Not a log of a learned value
            # alone, of a fed value alone (its range is the user's to know: a
            # one-hot label times a probability), or of a softmax (GF005's).
            reaches = (v.reaches_zero() if op == "Log" else False) or \
                (v.lo < edge and (not math.isinf(v.lo) or (v.data and v.learned)))
            if not reaches or not facts.nonfinite_reaches_loss((name, 0)):
                continue  # (a where that keeps only the elements in the domain removes it)
            res.append(self.finding(ctx, name, f"{op} of {x[0]}, which nothing bounds below: "
                                    "log(0) = -inf", guard="clamp"))
        return res

    def fix(self, ctx, finding):
        node = finding.node
        log1p = ctx.ir.op(node) != "Log"

        def floor(dtype):
            return -1.0 + 1e-7 if log1p else TINY.get(dtype, 1e-37)

        return self.replace_node(ctx, node, lambda b: clamp_first_input(
            b, node, floor, upper=False, bound_name="floor"))
