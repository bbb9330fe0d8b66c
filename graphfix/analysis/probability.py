"""Logs of probabilities: the ``log(p)`` forms with an exact log-domain
rewrite (log_softmax, -softplus), which GF005 applies and other rules defer
to, and where the probability comes from."""
from __future__ import annotations

from graphfix.analysis import ranges
from graphfix.analysis.consts import const_scalar, const_value
from graphfix.analysis.matcher import Pattern, match_any
from graphfix.analysis.structure import search_up, strip

GATHERS = tuple(sorted(ranges.GATHERS))
_PROB_PASS = ("Identity", "Reshape", "Squeeze", "ExpandDims", "Transpose", "Sum", "Mul", "Max", "Min", "Mean",
              "Select", "SelectV2", "Cast", "Tile") + GATHERS
# Ops an index passes through unchanged in value (a sampled action squeezed, cast).
_INDEX_PASS = ("Squeeze", "Reshape", "ExpandDims", "Cast", "StopGradient", "Identity")
# A product whose either side can carry the probability: p * w, and a mixture w @ p.
_PROB_PRODUCTS = ("Mul", "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")

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


def probability_like(ir, t) -> bool:
    """``t`` is a probability computed by Softmax/Sigmoid (possibly gathered,
    summed, multiplied, mixed by a matmul, selected or ``1 - p``)."""
    def step(op, ins):
        if op in ("Softmax", "Sigmoid"):
            return True
        if op == "Sub" and const_scalar(ir, ins[0]) == 1.0:
            return ins[1:2]
        if op in _PROB_PASS or op in _PROB_PRODUCTS:
            return ins[1:3] if op.startswith("Select") else ins[:2] if op in _PROB_PRODUCTS else ins[:1]
        return ()

    return search_up(ir, t, step)


def restructurable(ir, facts, group) -> bool:
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


def log_group(ir, src: str):
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


def repairable_at_birth(ir, facts, log: str) -> bool:
    """``log`` has an exact log-domain form that can replace it (GF005's safe fix)."""
    pat = pattern(ir, log)
    return pat is not None and restructurable(ir, facts, log_group(ir, pat[2]))


def _fed(ir, ranges_, t) -> bool:
    """``t`` is computed from feeds (and constants), and is not a constant itself."""
    return ranges_.data_only(t) and const_value(ir, strip(ir, t)[0]) is None


def _varies(ir, ranges_, t) -> bool:
    """``t`` changes per batch without being trained: fed, or drawn at
    random (an action sampled in the graph)."""
    return _fed(ir, ranges_, t) or search_up(
        ir, t, lambda op, ins: op in ranges.RANDOM_OPS or (ins[:1] if op in _INDEX_PASS else ()))


def picked_probability(ir, ranges_, log: str) -> bool:
    """``log`` takes the log of one softmax probability per example, picked
    by a per-batch index: gathered at fed or sampled indices, or summed
    against a one-hot of them (a ``OneHot`` op, or a one-hot fed as floats).

    In a policy-gradient graph the index is the action sampled from this
    same softmax, whose probability is not 0; with a supervised label it is
    GF005's hazard.  The graph does not say which, so GF011 (opt-in) owns
    these logs and GF005, GF006 and GF009 leave them alone."""
    pat = pattern(ir, log)
    if pat is not None:
        kind, region = pat[0], pat[1]
        if kind == "gather_log_softmax":
            return _varies(ir, ranges_, ir.input(region[1], 1))
        if kind == "onehot_log_softmax":
            return _varies(ir, ranges_, ir.input(pat[3][0], 0))
        return False
    total = strip(ir, ir.input(log, 0))
    if ir.op(total[0]) != "Sum":
        return False
    prod = strip(ir, ir.input(total[0], 0))
    if ir.op(prod[0]) != "Mul":
        return False
    a, b = ir.inputs(prod[0])[:2]
    return any(ir.op(strip(ir, p)[0]) == "Softmax" and _fed(ir, ranges_, w) for p, w in ((a, b), (b, a)))
