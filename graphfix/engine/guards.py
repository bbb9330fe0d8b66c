"""Guard builders shared by the rules (used inside a scratch-graph build).

All of them keep the original op on the taken path (cloned with the same
attributes), so values where the hazard does not fire are unchanged.
"""
from __future__ import annotations


def safe_fill(b, x, value, like_select_v1: bool):
    """A tensor of ``value`` for the untaken side of a sanitising where."""
    tf = b.tf
    if like_select_v1:
        return tf.fill(tf.shape(x), tf.constant(value, x.dtype), name="safe_value")
    return tf.constant(value, x.dtype, name="safe_value")


def sanitize(b, cond, x, value, keep_when: bool, v1: bool, name: str = "safe_input"):
    """The double-where's inner where: ``x`` where the outer where keeps the
    branch, an in-domain constant elsewhere (so neither value nor gradient of
    the singular op can be inf/NaN there)."""
    tf = b.tf
    safe = safe_fill(b, x, value, v1)
    a, b = (x, safe) if keep_when else (safe, x)
    if v1:
        return tf.raw_ops.Select(condition=cond, x=a, y=b, name=name)
    return tf.raw_ops.SelectV2(condition=cond, t=a, e=b, name=name)


def clone_with(b, node, replace: dict):
    """Clone IR ``node`` with some inputs (by position) replaced by tensors."""
    ins = [replace[i] if i in replace else b.input(t) for i, t in enumerate(b.ir.inputs(node))]
    return b.clone(node, ins)


def clamp_first_input(b, node, bound, *, upper: bool, bound_name: str):
    """``node`` again on its first input clamped: at most ``bound(dtype)``
    (``upper``) or at least it; ``dtype`` is the input's DataType enum."""
    x = b.input(b.ir.input(node, 0))
    c = b.tf.constant(bound(x.dtype.as_datatype_enum), x.dtype, name=bound_name)
    clamped = b.tf.minimum(x, c, name="clamped") if upper else b.tf.maximum(x, c, name="clamped")
    return clone_with(b, node, {0: clamped})[0]


def div_no_nan(node: str):
    """A build function turning division ``node`` (``RealDiv``/``Div``, or
    ``Reciprocal``/``Inv``) into ``DivNoNan`` on the same operands."""

    def build(b):
        tf = b.tf
        ins = b.ir.inputs(node)
        if b.ir.op(node) in ("Reciprocal", "Inv"):
            x = b.input(ins[0])
            return tf.math.divide_no_nan(tf.ones_like(x), x, name="div_no_nan")
        return tf.math.divide_no_nan(b.input(ins[0]), b.input(ins[1]), name="div_no_nan")

    return build
