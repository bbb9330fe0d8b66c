"""Small structural helpers: looking through identities, and recognising an
element count (``size(x)``) — the numeric analysis uses it to learn that a
branch taken when ``size(x) > 0`` sees ``x`` non-empty."""
from __future__ import annotations

_PASS = ("Identity", "Snapshot")


def strip(ir, t: tuple[str, int]) -> tuple[str, int]:
    """Follow Identity-like ops up to the real producer."""
    while ir.op(t[0]) in _PASS:
        t = ir.input(t[0], 0)
    return t


def size_source(ir, t: tuple[str, int]) -> tuple[str, int] | None:
    """If ``t`` is the element count of a tensor (``Size(x)``, ``Cast(Size(x))``,
    ``Prod(Shape(x))``), that tensor ``x``."""
    t = strip(ir, t)
    while ir.op(t[0]) == "Cast":
        t = strip(ir, ir.input(t[0], 0))
    op = ir.op(t[0])
    if op == "Size":
        return strip(ir, ir.input(t[0], 0))
    if op == "Prod":
        shp = strip(ir, ir.input(t[0], 0))
        if ir.op(shp[0]) == "Shape":
            return strip(ir, ir.input(shp[0], 0))
    return None


def clamped_after(ir, name: str) -> bool:
    """Every consumer of ``name`` clips or min/maxes it right away."""
    cons = ir.consumers(name)
    return bool(cons) and all(ir.op(dst) in ("Minimum", "Maximum", "ClipByValue") for dst, _ in cons)


def search_up(ir, t: tuple[str, int], step, goal: tuple[str, int] | None = None) -> bool:
    """Walk up the producers of ``t`` (Identity-like ops skipped), each tensor
    once: True on reaching ``goal`` (a tensor), or when ``step(op, inputs)`` of
    a producer returns True; otherwise ``step`` gives the input tensors to
    follow (possibly none)."""
    goal = strip(ir, goal) if goal is not None else None
    todo, seen = [strip(ir, t)], set()
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        if cur == goal:
            return True
        nxt = step(ir.op(cur[0]), ir.inputs(cur[0]))
        if nxt is True:
            return True
        todo.extend(strip(ir, x) for x in nxt)
    return False
