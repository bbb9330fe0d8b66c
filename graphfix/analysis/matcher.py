"""Declarative pattern matching over the IR, in the style of TensorFlow's
Graph Transform Tool and tf2onnx (``OpTypePattern``).

    LOG_SOFTMAX = Pattern("Log", inputs=[Pattern("Softmax", "softmax", [Pattern("*", "logits")])])
    m = match(ir, LOG_SOFTMAX, (node, 0))
    if m: m["logits"]  # the tensor bound to "logits"

A pattern names an op (``"A|B"`` for alternatives, ``"*"`` for any), an
optional binding name and patterns for the first inputs.  Matching looks
through ``Identity``/``Snapshot``, tries both input orders of commutative
ops, and a name bound twice must bind the same tensor (``Sub(x, Max(x))``).
"""
from __future__ import annotations

import dataclasses

from graphfix.analysis.consts import const_scalar
from graphfix.analysis.structure import strip

COMMUTATIVE = frozenset({"Add", "AddV2", "Mul", "Maximum", "Minimum", "Equal", "NotEqual", "LogicalAnd",
                         "LogicalOr", "SquaredDifference", "MulNoNan"})


@dataclasses.dataclass(frozen=True)
class Pattern:
    op: str = "*"
    name: str | None = None
    inputs: tuple = ()
    const: object = None  # a predicate on the tensor's constant scalar value (float -> bool)

    def __init__(self, op: str = "*", name: str | None = None, inputs=(), const=None):
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "inputs", tuple(inputs))
        object.__setattr__(self, "const", const)

    @property
    def ops(self) -> frozenset:
        return frozenset(self.op.split("|"))


def match(ir, pattern: Pattern, t) -> dict | None:
    """Bindings ``{name: (node, output)}`` if tensor ``t`` matches ``pattern``, else None."""
    if isinstance(t, str):
        t = (t, 0)
    return _match(ir, pattern, strip(ir, t), {})


def _match(ir, pat: Pattern, t, bound: dict):
    if pat.op != "*" and ir.op(t[0]) not in pat.ops:
        return None
    if pat.const is not None:
        k = const_scalar(ir, t)
        if k is None or not pat.const(k):
            return None
    if pat.name is not None:
        if pat.name in bound and bound[pat.name] != t:
            return None
        bound = {**bound, pat.name: t}
    if not pat.inputs:
        return bound
    ins = [strip(ir, x) for x in ir.inputs(t[0])]
    if len(ins) < len(pat.inputs):
        return None
    orders = [ins]
    if ir.op(t[0]) in COMMUTATIVE and len(pat.inputs) == 2 and len(ins) >= 2:
        orders.append([ins[1], ins[0]] + ins[2:])
    for order in orders:
        res = bound
        for sub, x in zip(pat.inputs, order):
            res = _match(ir, sub, x, res)
            if res is None:
                break
        if res is not None:
            return res
    return None


def match_any(ir, patterns, t) -> tuple[str, dict] | None:
    """The first of ``patterns`` (``{kind: Pattern}``) that ``t`` matches, with its bindings."""
    for kind, pat in patterns.items():
        m = match(ir, pat, t)
        if m is not None:
            return kind, m
    return None
