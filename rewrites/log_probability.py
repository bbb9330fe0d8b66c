"""GF005 log-of-probability."""
from __future__ import annotations

import numpy as np

from graphfix.analysis import ranges
from graphfix.analysis.consts import const_scalar
from graphfix.analysis.dtypes import is_float
from graphfix.analysis.guards import strip
from graphfix.analysis.matcher import Pattern, match_any
from graphfix.guards import clone_with
from graphfix.passes import Rule

GATHERS = tuple(sorted(ranges.GATHERS))
_PROB_PASS = ("Identity", "Reshape", "Squeeze", "ExpandDims", "Transpose", "Sum", "Mul", "Max", "Min", "Mean",
              "Select", "SelectV2", "Cast") + GATHERS
TINY = {1: np.finfo(np.float32).tiny, 2: np.finfo(np.float64).tiny, 19: np.finfo(np.float16).tiny,
        14: np.finfo(np.float32).tiny}


_LOGITS = Pattern("*", "z")
_SOFTMAX = Pattern("Softmax", "src", [_LOGITS])
_SIGMOID = Pattern("Sigmoid", "src", [_LOGITS])
# log(p) forms with an exact log-domain rewrite, by kind (tried in this order).
PATTERNS = {
    "log_softmax": Pattern("Log", "log", [_SOFTMAX]),
    "log_sigmoid": Pattern("Log", "log", [_SIGMOID]),
    "log_one_minus_sigmoid": Pattern("Log", "log", [Pattern("Sub", "p", [Pattern("Const", const=lambda k: k == 1.0),
                                                                         _SIGMOID])]),
    "gather_log_softmax": Pattern("Log", "log", [Pattern("|".join(GATHERS), "p", [_SOFTMAX])]),
    "onehot_log_softmax": Pattern("Log", "log", [Pattern("Sum", "p", [
        Pattern("Mul", "m", [Pattern("OneHot", "onehot"), _SOFTMAX])])]),
}


def pattern(ir, log: str):
    """How ``Log(p)`` can be rewritten exactly: (kind, region, source op, extra)."""
    found = match_any(ir, PATTERNS, log)
    if found is None:
        return None
    kind, m = found
    region = [log] + [m[k][0] for k in ("p", "m") if k in m] + [m["src"][0]]
    return kind, region, m["src"][0], m.get("onehot")


def guarded_elsewhere(ir, facts) -> set[str]:
    """Singular ops that GF003's or GF006's double where will guard."""
    from rewrites.masked_term import mask_sites
    from rewrites.where_gradient import where_sites

    res: set[str] = set()
    for n in facts.nodes_of("Select", "SelectV2", "Mul"):
        op = ir.op(n)
        if op in ("Select", "SelectV2"):
            res.update(s for _, sites in where_sites(ir, facts, n) for s, _, _ in sites)
        elif op == "Mul":
            res.update(s for _, _, sites in mask_sites(ir, facts, n) for s, _, _ in sites)
    return res


def probability_like(ir, t) -> bool:
    """``t`` is a probability computed by Softmax/Sigmoid (possibly gathered,
    summed, multiplied, selected or ``1 - p``)."""
    todo, seen = [strip(ir, t)], set()
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        op = ir.op(cur[0])
        if op in ("Softmax", "Sigmoid"):
            return True
        ins = ir.inputs(cur[0])
        if op == "Sub" and const_scalar(ir, ins[0]) == 1.0:
            todo.append(strip(ir, ins[1]))
        elif op in _PROB_PASS:
            nxt = ins[1:3] if op.startswith("Select") else ins[:2] if op == "Mul" else ins[:1]
            todo.extend(strip(ir, x) for x in nxt)
    return False


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

    def match(self, ctx):
        ir, facts = ctx.ir, ctx.facts
        res = []
        covered = None
        for name in facts.nodes_of("Log"):
            if not is_float(ir, name) or not facts.feeds_loss(name):
                continue
            p = ir.input(name, 0)
            if facts.ranges.positive(p):
                continue
            pat = pattern(ir, name)
            if pat is not None and not self._restructurable(ir, facts, self._group(ir, pat[2])):
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
        group = self._group(ir, pat[2])
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

    @staticmethod
    def _restructurable(ir, facts, group) -> bool:
        """The softmax/sigmoid and the ops between it and its logs feed nothing
        else that is differentiated (their gradient scopes can be replaced)."""
        if not group:
            return False
        region = {n for _, reg, _, _ in group for n in reg}
        outs = {reg[0] for _, reg, _, _ in group}
        grad = facts.grad_scopes.is_gradient_node
        for n in region - outs:
            for dst, _ in ir.consumers(n):
                if dst not in region and not grad(dst) and ir.op(dst) not in ("Shape", "Size", "ZerosLike"):
                    if facts.loss_ancestors is None or dst in facts.loss_ancestors:
                        return False
        return True

    @staticmethod
    def _group(ir, src: str):
        """Every log of the same softmax/sigmoid with an exact log-domain form,
        rewritten together (their gradients meet in the source op's scope)."""
        logs = set()
        stack = [src]
        seen = set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            for dst, _ in ir.consumers(n):
                if ir.op(dst) == "Log":
                    logs.add(dst)
                elif ir.op(dst) in ("Identity", "Sub") + GATHERS + ("Mul", "Sum"):
                    stack.append(dst)
        group = []
        for log in sorted(logs, key=ir.order.__getitem__):
            pat = pattern(ir, log)
            if pat is not None and pat[2] == src:
                group.append(pat)
        return group
