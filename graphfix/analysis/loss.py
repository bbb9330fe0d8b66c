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
from graphfix.errors import GraphfixError
from graphfix.ir import split_tensor, tensor_name

_SEED = re.compile(r"^(?P<gp>(?:.*/)?gradients(?:_\d+)?)/(?:grad_ys_\d+|Fill)$")
_NOT_LOSS_OPS = frozenset({"Const", "Placeholder", "PlaceholderWithDefault", "VariableV2", "Variable",
                           "VarHandleOp", "NoOp", "Assign", "AssignAdd", "AssignSub", "SaveV2", "RestoreV2",
                           "Identity", "ScalarSummary", "HistogramSummary", "MergeSummary"})


def gradient_seeds(ir) -> list[tuple[str, str]]:
    """(gradient prefix, loss tensor) for every ``tf.gradients`` call found."""
    res = []
    for name in ir.names():
        m = _SEED.match(name)
        if not m or ir.op(name) != "Fill":
            continue
        shape_node, _ = ir.input(name, 0)
        if ir.op(shape_node) != "Shape":
            continue
        loss_node, loss_out = ir.input(shape_node, 0)
        res.append((m.group("gp"), tensor_name(loss_node, loss_out)))
    return res


def resolve_tensor(ir, t: str) -> str:
    """Canonical ``node:idx`` for a user-given tensor or node name; error if missing."""
    node, out = split_tensor(t)
    if node not in ir:
        raise GraphfixError(f"--loss {t!r}: no such node in the graph")
    return tensor_name(node, out)


def find_losses(ir, given=None) -> tuple[list[str], str]:
    """The loss tensors and how they were found (``given``, ``gradients``,
    ``sink`` or ``none``)."""
    if given:
        return [resolve_tensor(ir, t) for t in given], "given"
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
