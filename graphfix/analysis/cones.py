"""Element-wise cones: the private, element-wise expression that computes one
input of a ``tf.where`` or of a masking multiply, and the singular ops in it.

A mask only lines up with the elements of a tensor through element-wise ops,
and sanitising an op's input is only invisible to the rest of the graph when
nothing outside the expression reads that op: so the cone holds the ops whose
every consumer is in the cone, walking up from the root through element-wise
ops only.
"""
from __future__ import annotations

from graphfix.analysis.consts import const_scalar, const_value
from graphfix.analysis.probability import picked_probability, repairable_at_birth
from graphfix.analysis.shapes import static_rank
from graphfix.analysis.structure import strip

ELEMENTWISE = frozenset({
    "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "Neg", "Abs", "Square", "Log", "Log1p", "Exp", "Expm1",
    "Sqrt", "Rsqrt", "Reciprocal", "Inv", "Pow", "Maximum", "Minimum", "Sigmoid", "Tanh", "Softplus",
    "Softsign", "Cast", "Identity", "Acos", "Asin", "Atanh", "Atan", "SquaredDifference", "Xlogy", "Xdivy",
    "Xlog1py", "MulNoNan", "DivNoNan", "Relu", "Relu6", "Elu", "Selu", "Sin", "Cos", "Sign", "Floor", "Ceil",
    "Round", "Lgamma", "Digamma", "Erf", "Erfc", "Snapshot", "BiasAdd", "LeakyRelu", "ClipByValue", "Select",
    "SelectV2",
})

# op -> (singular input positions, a safe value inside the domain, what makes the input safe)
SINGULAR = {
    "Log": ((0,), 1.0, "positive"),
    "Log1p": ((0,), 0.0, "nonneg"),
    "Sqrt": ((0,), 1.0, "positive"),
    "Rsqrt": ((0,), 1.0, "positive"),
    "Reciprocal": ((0,), 1.0, "positive"),
    "Inv": ((0,), 1.0, "positive"),
    "RealDiv": ((1,), 1.0, "positive"),
    "Div": ((1,), 1.0, "positive"),
    "Pow": ((0,), 1.0, "positive"),
    "Acos": ((0,), 0.0, "never"),
    "Asin": ((0,), 0.0, "never"),
    "Atanh": ((0,), 0.0, "never"),
    "Exp": ((0,), 0.0, "bounded"),
}


def private_cone(ir, root: str, sink: str, ignore=lambda n: False) -> list[str]:
    """Element-wise nodes feeding ``root`` (root included) read only inside the
    cone or by ``sink``.  Consumers for which ``ignore`` is true (the gradient
    subgraph, which graphfix patches along with the forward ops) don't count."""
    if ir.op(root) not in ELEMENTWISE or any(dst != sink and not ignore(dst) for dst, _ in ir.consumers(root)) \
            or ir.control_consumers(root):
        return []
    cone = [root]
    members = {root}
    i = 0
    while i < len(cone):
        n = cone[i]
        i += 1
        for src, _ in ir.inputs(n):
            if src in members or ir.op(src) not in ELEMENTWISE or ir.control_consumers(src):
                continue
            if all(dst in members or ignore(dst) for dst, _ in ir.consumers(src)):
                members.add(src)
                cone.append(src)
    return cone


def in_domain(ranges, kind: str, t) -> bool:
    if kind == "positive":
        return ranges.positive(t)
    if kind == "nonneg":
        return ranges.nonneg(t)
    if kind == "bounded":
        return ranges.bounded_above(t)
    return False


def singular_sites(ir, ranges, cone, sanitized) -> list[tuple[str, int, float]]:
    """(op, input position, safe value) for every singular op input in ``cone``
    that is neither provably in its domain nor already sanitised
    (``sanitized(t)`` decides the latter)."""
    sites = []
    for n in cone:
        spec = SINGULAR.get(ir.op(n))
        if spec is None:
            continue
        positions, safe, kind = spec
        if ir.op(n) == "Pow" and _integer_exponent(ir, n):
            continue
        for pos in positions:
            t = ir.inputs(n)[pos]
            if in_domain(ranges, kind, t) or sanitized(t):
                continue
            sites.append((n, pos, safe))
    return sites


def _integer_exponent(ir, n) -> bool:
    v = const_value(ir, ir.input(n, 1)[0])
    return v is not None and v.size >= 1 and bool((v == v.round()).all()) and bool((v >= 0).all())


def sanitized_by(ir, t, pred_ok, polarity: bool) -> bool:
    """``t`` is ``Select(c, x, safe)`` (polarity True) or ``Select(c, safe, x)``
    (False) with a constant ``safe`` and ``pred_ok(c)`` true."""
    t = strip(ir, t)
    if ir.op(t[0]) not in ("Select", "SelectV2"):
        return False
    c, a, b = ir.inputs(t[0])[:3]
    alt = strip(ir, b if polarity else a)
    return pred_ok(c) and (const_value(ir, alt[0]) is not None or ir.op(alt[0]) in ("OnesLike", "ZerosLike", "Fill"))


# ---------------------------------------------------------------- the sites GF003 and GF006 guard

def where_sites(ir, facts, select: str):
    """Singular op inputs inside either branch of ``select``:
    [(branch position, [(op, input position, safe value)…])]."""
    cond = ir.input(select, 0)
    res = []
    for pos in (1, 2):
        branch = ir.inputs(select)[pos]
        cone = private_cone(ir, branch[0], select, facts.grad_scopes.is_gradient_node)
        if not cone:
            continue
        keep_when = pos == 1

        def ok(t, keep_when=keep_when):
            return sanitized_by(ir, t, lambda c: strip(ir, c) == strip(ir, cond), keep_when)

        sites = [s for s in singular_sites(ir, facts.ranges, cone, ok) if facts.on_gradient_path(s[0])]
        if sites:
            res.append((pos, sites))
    return res


def _is_nonzero_test(ir, c, w) -> bool:
    c = strip(ir, c)
    if ir.op(c[0]) != "NotEqual":
        return False
    a, b = ir.inputs(c[0])[:2]
    return strip(ir, a) == strip(ir, w) and const_scalar(ir, b) == 0


_DIVISIONS = ("RealDiv", "Div", "Reciprocal", "Inv")
_BIRTH_REPAIRS = {"Sqrt": "GF004", "Rsqrt": "GF004", "Pow": "GF004", "RealDiv": "GF002", "Div": "GF002",
                  "Reciprocal": "GF002", "Inv": "GF002", "Log": "GF005"}


def _repaired_at_birth(ir, facts, site) -> bool:
    """The singular op's argument reaches its edge on its own (a saturated
    softmax, an exp that underflows, a mask sum), wherever the weight is: the
    non-finite value is born in that op, and a rule repairs or reports it
    there — GF004 a root of a non-negative value, GF002 a division, GF005 a
    log with an exact log-domain form, GF011 a log of a probability picked by
    a fed or sampled index (a policy's action); an exp that overflows is GF008's to
    report.  A double where keyed on the weight would only hide the
    masked-out elements.  So would one around a division by a scalar (a keep
    probability, a count): it cannot be 0 exactly where the weight is, and
    GF002 judges whether it can be 0 at all."""
    node, pos, _ = site
    op = ir.op(node)
    t = ir.inputs(node)[pos]
    v = facts.ranges.value(t)
    if op in _DIVISIONS and static_rank(ir, t) == 0:
        return True  # one divisor for every element: 0 everywhere or nowhere, never just where the weight is
    if op == "Exp":  # overflow born here (fed data unbounded, or a bound past it): GF008 reports it
        return not facts.ranges.bounded_above(t) and (v.data or v.hi != float("inf"))
    if op not in _BIRTH_REPAIRS or not v.reaches_zero():
        return False
    if op == "Log":  # GF005's exact form, or a picked probability GF011 judges
        return repairable_at_birth(ir, facts, node) or picked_probability(ir, facts.ranges, node)
    if _BIRTH_REPAIRS[op] == "GF004":
        return v.nonneg
    return True


def mask_sites(ir, facts, mul: str):
    """[(weight position, term position, sites)] for ``weight * term`` products
    whose term has unguarded singular ops and whose weight is a mask or data."""
    res = []
    ranges = facts.ranges
    ins = ir.inputs(mul)
    for wpos, tpos in ((0, 1), (1, 0)):
        w, term = ins[wpos], ins[tpos]
        if ranges.positive(w) or not (ranges.mask_like(w) or ranges.data_only(w)):
            continue  # a random draw (eps of a reparameterisation) or a learned weight is no mask
        cone = private_cone(ir, term[0], mul, facts.grad_scopes.is_gradient_node)
        if not cone:
            continue
        sites = [s for s in singular_sites(ir, ranges, cone,
                                           lambda t, w=w: sanitized_by(ir, t, lambda c: _is_nonzero_test(ir, c, w),
                                                                       True))
                 if facts.on_gradient_path(s[0]) and not _repaired_at_birth(ir, facts, s)]
        if sites:
            res.append((wpos, tpos, sites))
    return res


def guarded_elsewhere(ir, facts) -> set[str]:
    """Singular ops that GF003's or GF006's double where will guard."""
    res: set[str] = set()
    for n in facts.nodes_of("Select", "SelectV2", "Mul"):
        op = ir.op(n)
        if op in ("Select", "SelectV2"):
            res.update(s for _, sites in where_sites(ir, facts, n) for s, _, _ in sites)
        elif op == "Mul":
            res.update(s for _, _, sites in mask_sites(ir, facts, n) for s, _, _ in sites)
    return res
