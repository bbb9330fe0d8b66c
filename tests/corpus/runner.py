"""Run a corpus case (original or rewritten GraphDef) in TensorFlow.

``run_case`` runs a case through graphfix's own graph runner
(:class:`graphfix.verification.runner.GraphRunner`, the one ``graphfix
verify`` uses): the loss, the gradients of the loss w.r.t. every variable of
the case, and the variable values before and after ``steps`` runs of the train
op.  It is the common yardstick to compare an original graph with the graph
graphfix wrote.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from graphfix.core.model import Model
from graphfix.verification.runner import GraphRunner

from . import Case


def _resolve_feeds(case: Case, feeds) -> dict[str, np.ndarray]:
    if feeds is None or isinstance(feeds, str):
        which = feeds or "normal"
        if which == "normal":
            return case.feeds_normal
        if which == "trigger":
            return case.feeds_trigger
        raise ValueError(f"feeds must be a dict, 'normal' or 'trigger', not {feeds!r}")
    return dict(feeds)


def run_case(
    case: Case,
    graph_def=None,
    feeds="normal",
    steps: int = 0,
    *,
    loss: str | None = None,
    train_op: str | None = None,
) -> dict:
    """Run ``case`` (or ``graph_def``, e.g. a graph rewritten by graphfix).

    Args:
      case: the corpus case (names of loss, train op, init op, variables).
      graph_def: GraphDef to import; default ``case.graph_def``.
      feeds: a feed dict (tensor name -> array; a case may feed an
        intermediate tensor too), or ``"normal"`` (default) / ``"trigger"`` for
        the case's own feeds.
      steps: how many times to run the train op after computing loss and
        gradients (ignored for forward-only cases).
      loss / train_op: override the names stored in the case.

    Returns a dict:
      ``loss``: float loss value at the initial variables;
      ``grads``: {variable name: ndarray} gradient of the loss at the initial
        variables (IndexedSlices densified, unconnected -> zeros);
      ``init_variables``: {variable name: ndarray} values right after ``init``;
      ``variables``: {variable name: ndarray} values after ``steps`` train
        steps (equal to ``init_variables`` when no step ran);
      ``loss_after``: loss after the train steps, or None when no step ran;
      ``steps``: number of train steps actually run.
    """
    gd = case.graph_def if graph_def is None else graph_def
    feed_values = _resolve_feeds(case, feeds)
    loss_name = loss or case.loss
    train_name = train_op if train_op is not None else case.train_op
    steps = int(steps) if train_name else 0

    runner = GraphRunner(Model.of(gd), [loss_name], [train_name] if steps else [], case.name)
    try:
        init_values = runner.state()
        ex = runner.execute(feed_values, init_values, steps, placeholders_only=False)
        loss_after = float(runner.losses(feed_values, placeholders_only=False)[loss_name]) if steps else None
    finally:
        runner.close()
    grads = {name: ex.grads.get(f"{loss_name} / {name}") for name in case.variables}
    return {
        "loss": float(ex.loss[loss_name]),
        "grads": {name: np.zeros_like(init_values[name]) if g is None else g for name, g in grads.items()},
        "init_variables": {name: init_values[name] for name in case.variables},
        "variables": {name: ex.variables[name] for name in case.variables},
        "loss_after": loss_after,
        "steps": steps,
    }


def all_finite(result: Mapping) -> bool:
    """True when loss and every gradient in a ``run_case`` result are finite."""
    if not np.isfinite(result["loss"]):
        return False
    return all(np.all(np.isfinite(g)) for g in result["grads"].values())


def nonfinite_summary(result: Mapping) -> str:
    """Short text naming the non-finite pieces of a ``run_case`` result."""
    parts = []
    if not np.isfinite(result["loss"]):
        parts.append(f"loss={result['loss']}")
    for name, g in result["grads"].items():
        bad = int(np.size(g) - np.count_nonzero(np.isfinite(g)))
        if bad:
            parts.append(f"grad[{name}]: {bad}/{np.size(g)} non-finite")
    return "; ".join(parts) or "all finite"
