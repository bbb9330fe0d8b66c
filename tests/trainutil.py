"""Helpers for the training tests: rewrite a graph, train it for a few batches
in TensorFlow, compare every variable."""
import numpy as np

import graphfix
from graphfix.core.model import Model
from graphfix.verification.runner import GraphRunner


def train(tf, graph, trains, feeds):
    """Every variable (slots included) after running each train op once per
    batch, with graphfix's graph runner (a MetaGraphDef is imported with its
    while/cond contexts and collections)."""
    runner = GraphRunner(Model.of(graph), [], list(trains), "graph")
    try:
        return runner.train_on(feeds)
    finally:
        runner.close()


def rewrite(graph, select=("GF001",), fixed_count=1, **kw):
    """graphfix.rewrite of a GraphDef or MetaGraphDef; asserts ``fixed_count`` findings were fixed."""
    fixed, report = graphfix.rewrite(Model.of(graph), select=list(select), **kw)
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
