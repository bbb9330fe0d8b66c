"""The IR is lossless, its edit API keeps NodeDef.input and its indexes in step, and its networkx view agrees."""
import os

import networkx as nx
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


def _edit_graph(tf):
    """a, b consts; c = a + a; e = identity(c); d = identity(b) after ^c."""
    g = tf.Graph()
    with g.as_default():
        a = tf.constant(1.0, name="a")
        b = tf.constant(2.0, name="b")
        c = tf.add(a, a, name="c")
        tf.identity(c, name="e")
        with tf.control_dependencies([c]):
            tf.identity(b, name="d")
    return g.as_graph_def()


def test_edit_api_replace_rename_remove(tf):
    ir = GraphIR(_edit_graph(tf))
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


def test_queries_agree_with_networkx_on_the_graph_view():
    """ancestors/descendants/has_path/predecessors/successors answer from the
    IR's own indexes; they must say what networkx says on ``ir.g``."""
    model = graphfix.load(GRAPHS[0])
    ir = GraphIR(model.graph_def)
    g = ir.g
    assert isinstance(g, nx.DiGraph) and list(g.nodes) == ir.names()
    names = ir.names()
    sample = names[:: max(1, len(names) // 40)]
    for n in sample:
        assert g.nodes[n]["node"] == ir.node(n)
        assert ir.ancestors(n) == nx.ancestors(g, n)
        assert ir.descendants(n) == nx.descendants(g, n)
        assert set(ir.predecessors(n)) == set(g.predecessors(n))
        assert ir.successors(n) == set(g.successors(n))
        for m in sample[:10]:
            assert ir.has_path(m, n) == nx.has_path(g, m, n)


def test_graph_view_follows_edits(tf):
    ir = GraphIR(_edit_graph(tf))
    before = ir.g
    assert before.edges["a", "c"] == {"count": 2} and before.edges["c", "d"] == {}
    ir.replace_uses(("a", 0), ("b", 0))
    ir.rename("c", "c2")
    after = ir.g
    assert after is not before  # the view of the earlier version is left as it was
    assert set(after.edges) == {("b", "c2"), ("c2", "e"), ("c2", "d"), ("b", "d")}
    assert after.edges["b", "c2"] == {"count": 2}
    assert after.nodes["c2"]["node"].name == "c2" and "c" not in after
    assert ir.g is after  # built once per version
    assert ir.control_consumers("c2") == ["d"] and ir.consumers("b") == [("c2", 0), ("c2", 1), ("d", 0)]


def test_load_without_the_file_bytes_still_saves(tmp_path):
    kept = graphfix.load(GRAPHS[1])
    dropped = graphfix.load(GRAPHS[1], keep_bytes=False)
    assert kept.raw is not None and dropped.raw is None
    out = tmp_path / "out.pb"
    graphfix.save(dropped, str(out))
    again = graphfix.load(str(out))
    assert again.graph_def == kept.graph_def
