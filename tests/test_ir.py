"""The networkx IR is lossless and its edit API keeps NodeDef.input and edges in step."""
import os

import pytest

import graphfix
from graphfix.core.errors import GraphfixError
from graphfix.core.ir import GraphIR
from tests.helpers import EXAMPLES

GRAPHS = [os.path.join(EXAMPLES, f) for f in ("detection.pb", "clean.pb")]


@pytest.mark.parametrize("path", GRAPHS)
def test_unedited_ir_gives_back_the_same_graph(path):
    model = graphfix.load(path)
    ir = GraphIR(model.graph_def)
    assert ir.to_graph_def() == model.graph_def
    # Also when forced through re-serialisation: the message is equal field by field.
    ir.changed = True
    assert ir.to_graph_def() == model.graph_def


def test_edges_mirror_inputs():
    model = graphfix.load(GRAPHS[0])
    ir = GraphIR(model.graph_def)
    for n in model.graph_def.node:
        data = [s for s in n.input if not s.startswith("^")]
        assert len(ir.inputs(n.name)) == len(data)
        # one edge per producer; its "count" (1 when absent) is how many inputs name it
        assert ir.g.in_degree(n.name) == len({s.lstrip("^").split(":")[0] for s in n.input})
        assert sum(c for _, _, c in ir.g.in_edges(n.name, data="count", default=1)) == len(n.input)


def test_edit_api_replace_rename_remove(tf):
    g = tf.Graph()
    with g.as_default():
        a = tf.constant(1.0, name="a")
        b = tf.constant(2.0, name="b")
        c = tf.add(a, a, name="c")
        tf.identity(c, name="e")
        with tf.control_dependencies([c]):
            tf.identity(b, name="d")
    ir = GraphIR(g.as_graph_def())
    assert ir.replace_uses(("a", 0), ("b", 0)) == ["c"]
    assert ir.inputs("c") == [("b", 0), ("b", 0)]
    assert not ir.has_consumers("a")
    ir.rename("c", "c2")
    assert ir.inputs("e") == [("c2", 0)] and [s for s in ir.node("d").input if s.startswith("^")] == ["^c2"]
    assert ir.remove_dead(["a", "c2"]) == ["a"]
    with pytest.raises(GraphfixError):
        ir.remove_node("b")
    out = ir.to_graph_def()
    assert [n.name for n in out.node] == ["b", "c2", "e", "d"]
    tf.compat.v1.import_graph_def(out, name="")  # still a valid graph


def test_missing_input_and_duplicates_are_errors(tf):
    gd = tf.compat.v1.GraphDef()
    n = gd.node.add(name="x", op="Identity")
    n.input.append("nowhere")
    with pytest.raises(GraphfixError, match="missing node"):
        GraphIR(gd)
    gd = tf.compat.v1.GraphDef()
    gd.node.add(name="x", op="NoOp")
    gd.node.add(name="x", op="NoOp")
    with pytest.raises(GraphfixError, match="duplicate"):
        GraphIR(gd)
