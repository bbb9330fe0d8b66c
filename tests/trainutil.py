"""Helpers for the training tests: rewrite a graph, train it for a few batches
in TensorFlow, compare every variable."""
import numpy as np

import graphfix
from graphfix.model import Model


def _import(tf, graph):
    """Import a GraphDef (import_graph_def) or a MetaGraphDef (import_meta_graph,
    which restores the while/cond contexts and the collections)."""
    if hasattr(graph, "collection_def"):
        tf.compat.v1.train.import_meta_graph(graph)
    else:
        tf.compat.v1.import_graph_def(graph, name="")


def train(tf, graph, trains, feeds, init="init"):
    """Every variable (slots included) after running each train op once per batch."""
    g = tf.Graph()
    with g.as_default():
        _import(tf, graph)
        read = {}
        for op in g.get_operations():
            if op.type == "VariableV2":
                read[op.name] = op.outputs[0]
            elif op.type == "VarHandleOp":
                read[op.name] = tf.raw_ops.ReadVariableOp(resource=op.outputs[0], dtype=op.get_attr("dtype"))
        ops = [g.get_operation_by_name(t) for t in trains]
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    with tf.compat.v1.Session(graph=g, config=config) as sess:
        sess.run(g.get_operation_by_name(init))
        for feed in feeds:
            for op in ops:
                sess.run(op, feed)
        return sess.run(read)


def rewrite(graph, select=("GF001",), fixed_count=1, **kw):
    """graphfix.rewrite of a GraphDef or MetaGraphDef; asserts ``fixed_count`` findings were fixed."""
    if hasattr(graph, "collection_def"):
        model = Model(kind="meta_graph", text=False, graph_def=graph.graph_def, meta_graph=graph)
    else:
        model = Model(kind="graph_def", text=False, graph_def=graph)
    fixed, report = graphfix.rewrite(model, select=list(select), **kw)
    got = [(f.code, f.fixed, f.note) for f in report.findings]
    assert sum(f.fixed for f in report.findings) == fixed_count and not report.remaining, got
    return fixed.meta_graph if fixed.meta_graph is not None else fixed.graph_def


def assert_identical(a, b):
    assert sorted(a) == sorted(b)
    diff = {k: float(np.max(np.abs(a[k] - b[k]))) for k in a if not np.array_equal(a[k], b[k])}
    assert not diff, f"variables differ (max abs diff per variable): {diff}"


def assert_finite(values):
    bad = [k for k, v in values.items() if not np.all(np.isfinite(v))]
    assert not bad, f"non-finite after training: {bad}"


def assert_poisoned(values):
    assert any(not np.all(np.isfinite(v)) for v in values.values()), "the hazard did not fire"
