"""Run a corpus case (original or rewritten GraphDef) in TensorFlow.

``run_case`` imports a GraphDef into a fresh ``tf.Graph`` with
``import_graph_def(gd, name="")``, runs the case's ``init`` op, and returns the
loss, the gradients of the loss w.r.t. every trainable variable (built with
``tf.compat.v1.gradients`` on the imported graph), and the variable values
before and after ``steps`` runs of the train op.  It is the common yardstick
to compare an original graph with the graph graphfix wrote.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from . import Case

_REF_VARIABLE_OPS = ("VariableV2", "Variable")
_RESOURCE_VARIABLE_OPS = ("VarHandleOp",)


def _session_config() -> tf.compat.v1.ConfigProto:
    # One thread each: the graphs are tiny, and reductions become run-to-run
    # reproducible, which makes original-vs-fixed comparisons exact.
    return tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=1,
        inter_op_parallelism_threads=1,
    )


def _resolve_feeds(case: Case, feeds) -> dict[str, np.ndarray]:
    if feeds is None or isinstance(feeds, str):
        which = feeds or "normal"
        if which == "normal":
            return case.feeds_normal
        if which == "trigger":
            return case.feeds_trigger
        raise ValueError(f"feeds must be a dict, 'normal' or 'trigger', not {feeds!r}")
    return dict(feeds)


def _variable_reader(graph: tf.Graph, var_name: str):
    """Return (x_for_gradients, value_tensor) for a variable node name."""
    op = graph.get_operation_by_name(var_name)
    handle = op.outputs[0]
    if op.type in _REF_VARIABLE_OPS:
        # Fetching the ref output returns the current value; gradients flow
        # back to it through the ``<var>/read`` Identity.
        return handle, handle
    if op.type in _RESOURCE_VARIABLE_OPS:
        dtype = tf.dtypes.as_dtype(op.get_attr("dtype"))
        with graph.name_scope("corpus_runner/"):
            value = tf.raw_ops.ReadVariableOp(resource=handle, dtype=dtype, name=var_name.replace("/", "_"))
        return handle, value
    raise TypeError(f"{var_name} is a {op.type} node, not a variable")


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
      feeds: a feed dict (placeholder tensor name -> array), or ``"normal"``
        (default) / ``"trigger"`` for the case's own feeds.
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

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
        loss_t = graph.get_tensor_by_name(loss_name)
        xs, values = [], []
        for name in case.variables:
            x, value = _variable_reader(graph, name)
            xs.append(x)
            values.append(value)
        with graph.name_scope("corpus_runner/"):
            raw_grads = tf.compat.v1.gradients(loss_t, xs, name="corpus_runner_gradients")
        grads = []
        for g in raw_grads:
            if isinstance(g, tf.IndexedSlices):
                g = tf.convert_to_tensor(g)
            grads.append(g)
        init = graph.get_operation_by_name(case.init_op)
        train = graph.get_operation_by_name(train_name) if train_name else None
        feed_dict = {graph.get_tensor_by_name(k): v for k, v in feed_values.items()}

    fetch_grads = [g for g in grads if g is not None]
    with tf.compat.v1.Session(graph=graph, config=_session_config()) as sess:
        sess.run(init)
        init_values = sess.run(values)
        loss_value, grad_values = sess.run([loss_t, fetch_grads], feed_dict)
        for _ in range(steps):
            sess.run(train, feed_dict)
        if steps:
            after_values = sess.run(values)
            loss_after = float(sess.run(loss_t, feed_dict))
        else:
            after_values = init_values
            loss_after = None

    grad_iter = iter(grad_values)
    grad_dict = {}
    for name, g, v in zip(case.variables, grads, init_values):
        grad_dict[name] = np.zeros_like(v) if g is None else np.asarray(next(grad_iter))
    return {
        "loss": float(loss_value),
        "grads": grad_dict,
        "init_variables": dict(zip(case.variables, init_values)),
        "variables": dict(zip(case.variables, after_values)),
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
