"""Finding the losses of a graph and the gradient subgraphs built from them.

A graph written after ``optimizer.minimize`` holds, per ``tf.gradients``
call, a *gradient prefix* (``gradients``, ``gradients_1``, ``train/gradients``
…) seeded by ``<prefix>/grad_ys_N`` or ``<prefix>/Fill`` = ``Fill(Shape(loss), 1)``.
The loss is the input of that ``Shape``.  Without a gradient subgraph the
loss is the lone scalar float sink of the graph, or what ``--loss`` names.
"""
from __future__ import annotations

import re

from graphfix.analysis.dtypes import FLOAT_TYPES, out_dtype
from graphfix.analysis.gradpath import spliced_owner
from graphfix.core.errors import GraphfixError
from graphfix.core.ir import split_tensor, tensor_name

_SEED = re.compile(r"^(?P<gp>(?:.*/)?gradients(?:_\d+)?)/(?:grad_ys_\d+|Fill)$")
_NOT_LOSS_OPS = frozenset({"Const", "Placeholder", "PlaceholderWithDefault", "VariableV2", "Variable",
                           "VarHandleOp", "NoOp", "Assign", "AssignAdd", "AssignSub", "SaveV2", "RestoreV2",
                           "ScalarSummary", "HistogramSummary", "MergeSummary"})


def gradient_seeds(ir, fills=None) -> list[tuple[str, str]]:
    """(gradient prefix, loss tensor) for every ``tf.gradients`` call found;
    ``fills``: the graph's ``Fill`` nodes in order, if known (an op index)."""
    res = []
    if fills is None:
        fills = [name for name, op in ir.op_table().items() if op == "Fill"]
    for name in fills:
        m = _SEED.match(name)
        if not m:
            continue
        gp = m.group("gp")
        loss = _loss_from_shape(ir, name) or _loss_from_consumers(ir, gp, name)
        if loss is not None:
            res.append((gp, loss))
    return res


def _loss_from_shape(ir, seed: str) -> str | None:
    shape_node, _ = ir.input(seed, 0)
    if ir.op(shape_node) != "Shape":
        return None  # a static shape is folded into a Const
    return tensor_name(*ir.input(shape_node, 0))


def _loss_from_consumers(ir, gp: str, seed: str) -> str | None:
    """The loss op is the one whose gradient scope reads the seed.  Identity ops
    have no scope of their own (their gradient is the seed itself), so follow
    single Identity consumers forward to the tensor the user named."""
    todo, seen = [dst for dst, _ in ir.consumers(seed)], set()
    while todo:
        dst = todo.pop(0)
        if dst in seen:
            continue
        seen.add(dst)
        # A repair may have replaced the scope that read the seed: its spliced
        # gradient reads the seed through ``<anchor>/graphfix/<CODE>/grad/grad_ys_N``.
        node, via = spliced_owner(ir, dst)
        if via:
            todo.extend(c for c, _ in ir.consumers(dst))
            continue
        if node is None:
            rest = dst[len(gp) + 1:] if dst.startswith(gp + "/") else ""
            i = rest.find("_grad/")
            node = rest[:i] if i > 0 else None
        if node is None or node not in ir:
            continue
        owner = node
        while True:
            nxt = [c for c, _ in ir.consumers(node, 0) if ir.op(c) in ("Identity", "Snapshot")
                   and not c.startswith(gp + "/")]
            if len(nxt) != 1:
                break
            node = nxt[0]
        dt = out_dtype(ir, node, 0)
        if dt is not None and dt not in FLOAT_TYPES:  # e.g. output 0 of a While: its loop counter
            return _float_sink_below(ir, gp, owner) or tensor_name(node, 0)
        return tensor_name(node, 0)
    return None


def _float_sink_below(ir, gp: str, op: str) -> str | None:
    """The one float tensor downstream of ``op`` that only gradient nodes read
    (the loss a multi-output op such as a ``While`` feeds)."""
    seen, todo, cands = {op}, [op], []
    while todo:
        for c in sorted(ir.successors(todo.pop())):
            if c in seen or c.startswith(gp + "/"):
                continue
            seen.add(c)
            todo.append(c)
            n = ir.node(c)
            if n.op in _NOT_LOSS_OPS or n.op.startswith(("Apply", "ResourceApply")):
                continue
            if out_dtype(ir, c, 0) in FLOAT_TYPES and all(d.startswith(gp + "/") for d in ir.successors(c)):
                cands.append(c)
    outside = [c for c in cands if not c.startswith(op + "/")]  # not the op's own output Identities
    cands = outside if len(outside) == 1 else cands
    return tensor_name(cands[0], 0) if len(cands) == 1 else None


def resolve_tensor(ir, t: str) -> str:
    """Canonical ``node:idx`` for a user-given tensor or node name; error if missing."""
    node, out = split_tensor(t)
    if node not in ir:
        raise GraphfixError(f"--loss {t!r}: no such node in the graph")
    return tensor_name(node, out)


def find_losses(ir, given=None, seeds=None) -> tuple[list[str], str]:
    """The loss tensors and how they were found (``given``, ``gradients``,
    ``sink`` or ``none``); ``seeds``: :func:`gradient_seeds`, if known."""
    if given:
        return [resolve_tensor(ir, t) for t in given], "given"
    if seeds is None:
        seeds = gradient_seeds(ir)
    if seeds:
        seen = []
        for _, loss in seeds:
            if loss not in seen:
                seen.append(loss)
        return seen, "gradients"
    sinks = []
    for name in ir.names():
        n = ir.node(name)
        if n.op in _NOT_LOSS_OPS or ir.has_consumers(name) or n.op.startswith(("Apply", "ResourceApply", "Save")):
            continue
        if out_dtype(ir, name, 0) in FLOAT_TYPES:
            sinks.append(name)
    if len(sinks) == 1:
        return [tensor_name(sinks[0], 0)], "sink"
    scalar = [s for s in sinks if _is_scalar(ir, s)]
    if len(scalar) == 1:
        return [tensor_name(scalar[0], 0)], "sink"
    return [], "none"


def _is_scalar(ir, name: str) -> bool:
    shapes = ir.attr(name, "_output_shapes")
    if shapes is not None and shapes.list.shape:
        s = shapes.list.shape[0]
        return not s.unknown_rank and len(s.dim) == 0
    return False
