"""Recognising guards that are already in place, so safe graphs are left
alone and a rewrite's own output is a fixpoint."""
from __future__ import annotations

from graphfix.analysis.consts import const_scalar

_PASS = ("Identity", "Snapshot")


def strip(ir, t: tuple[str, int]) -> tuple[str, int]:
    """Follow Identity-like ops up to the real producer."""
    for _ in range(16):
        if ir.op(t[0]) not in _PASS:
            break
        t = ir.input(t[0], 0)
    return t


def size_source(ir, t: tuple[str, int]) -> tuple[str, int] | None:
    """If ``t`` is the element count of a tensor (``Size(x)``, ``Cast(Size(x))``,
    ``Prod(Shape(x))``), that tensor ``x``."""
    t = strip(ir, t)
    for _ in range(4):
        op = ir.op(t[0])
        if op == "Cast" or op in _PASS:
            t = strip(ir, ir.input(t[0], 0))
            continue
        break
    op = ir.op(t[0])
    if op == "Size":
        return strip(ir, ir.input(t[0], 0))
    if op == "Prod":
        shp = strip(ir, ir.input(t[0], 0))
        if ir.op(shp[0]) == "Shape":
            return strip(ir, ir.input(shp[0], 0))
    return None


def is_nonempty_check(ir, pred: tuple[str, int], data: tuple[str, int]) -> bool:
    """True if boolean ``pred`` is ``size(data) > 0`` (or ``>= 1``, ``!= 0``, ``0 < size``)."""
    pred = strip(ir, pred)
    data = strip(ir, data)
    op = ir.op(pred[0])
    ins = ir.inputs(pred[0])
    if len(ins) != 2:
        return False
    a, b = ins
    if op in ("Greater", "NotEqual"):
        return size_source(ir, a) == data and const_scalar(ir, b) == 0
    if op == "GreaterEqual":
        return size_source(ir, a) == data and const_scalar(ir, b) == 1
    if op == "Less":
        return size_source(ir, b) == data and const_scalar(ir, a) == 0
    return False


def switch_guard(ir, t: tuple[str, int]) -> tuple[tuple[str, int], tuple[str, int]] | None:
    """If ``t`` is the true output of a ``Switch`` (a v1 cond branch input),
    (switched data, predicate)."""
    t = strip(ir, t)
    if ir.op(t[0]) in ("Switch", "RefSwitch") and t[1] == 1:
        data, pred = ir.inputs(t[0])[:2]
        return strip(ir, data), pred
    return None


def value_discarded(ir, name: str) -> bool:
    """True if only the shape, never the value, of ``name``'s output is used."""
    cons = ir.consumers(name)
    return bool(cons) and all(ir.op(dst) in ("ZerosLike", "Shape", "Size", "Rank") for dst, _ in cons)


def selected_only_when(ir, name: str, check) -> bool:
    """True if every consumer of ``name`` is a Select(c, name, other) with
    ``check(c)`` true, or only uses its shape."""
    cons = ir.consumers(name)
    if not cons:
        return False
    for dst, pos in cons:
        op = ir.op(dst)
        if op in ("ZerosLike", "Shape", "Size", "Rank"):
            continue
        if op in ("Select", "SelectV2") and pos == 1 and check(ir.input(dst, 0)):
            continue
        return False
    return True
