"""Analyses survive edits: the facts a rewrite carries from one IR version to
the next (graphfix.analysis.Facts._carry) equal facts computed from scratch,
and so does the rewritten graph."""
import numpy as np
import pytest

import graphfix
from graphfix.analysis import Facts
from graphfix.analysis.gradpath import GradScopes
from graphfix.core.ir import GraphIR
from graphfix.core.model import Model

HAZARDS = 6


def _training_graph(tf):
    """A small TF1 training graph with HAZARDS independent empty-able terms:
    means over a boolean_mask and mask-sum divisions, each on its own token."""
    tf1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [None, 4], name="x")
        tokens = tf1.placeholder(tf.int32, [None], name="tokens")
        w = tf1.get_variable("w", [4, 1], initializer=tf1.ones_initializer())
        with tf1.colocate_with(w):
            scale = tf.identity(w * 0.5, name="scale")
        per_example = tf.squeeze(tf.matmul(x, scale), 1) ** 2
        terms = []
        for k in range(HAZARDS):
            hit = tf.equal(tokens, k)
            if k % 2 == 0:
                terms.append(tf.reduce_mean(tf.boolean_mask(per_example, hit), name=f"mean_{k}"))
            else:
                m = tf.cast(hit, tf.float32)
                terms.append(tf.math.divide(tf.reduce_sum(per_example * m), tf.reduce_sum(m), name=f"ratio_{k}"))
        loss = tf.add_n(terms, name="loss")
        tf1.train.AdamOptimizer(0.1).minimize(loss, name="train")
    return g.as_graph_def()


def _model(gd):
    return Model(kind="graph_def", text=False, graph_def=gd, path="incremental.pb")


def _same_scopes(a: GradScopes, b: GradScopes):
    assert {k: v for k, v in a.scopes.items() if v} == {k: v for k, v in b.scopes.items() if v}
    assert a.built_as == b.built_as
    assert a.members == b.members
    assert dict(a.by_op) == dict(b.by_op)
    assert a.owner == b.owner
    assert sorted(a.prefixes) == sorted(b.prefixes)


def test_carried_facts_equal_fresh_ones_after_every_fix(tf, monkeypatch):
    gd = _training_graph(tf)
    carried = []
    original = Facts._carry

    def checked(self, prev):
        original(self, prev)
        ir = self.ir
        fresh = Facts(ir, self._given_losses)
        fresh.__dict__["seeds"] = self.seeds
        if "grad_scopes" in self.__dict__:
            _same_scopes(self.__dict__["grad_scopes"], fresh.grad_scopes)
            carried.append("grad_scopes")
        if "_by_op" in self.__dict__:
            assert self.__dict__["_by_op"] == fresh._by_op
            # the places the update keeps beside the index (made at the first update)
            assert self.__dict__["_op_of"] == {n: (ir.op(n), ir.order[n]) for n in ir.names()}
            carried.append("_by_op")
        if "numeric" in self.__dict__:  # every value kept is the value a fresh analysis gives
            num, again = self.__dict__["numeric"], fresh.numeric
            assert num._vals and set(num._vals) <= set(ir.names())
            for n, outs in num._vals.items():
                assert outs == [again.value((n, k)) for k in range(len(outs))], n
            carried.append("numeric")
        if "ranges" in self.__dict__:
            kept = self.__dict__["ranges"]._prov.memo
            assert kept and all(fresh.ranges.data_only((n, 0)) == (not v) for n, v in kept.items())
            carried.append("ranges")
        if "_learned" in self.__dict__:
            kept = self.__dict__["_learned"].memo
            assert kept and all(fresh._learned(n) == v for n, v in kept.items())
            carried.append("_learned")
        # every node asked, so that the next edit has to forget the right ones
        self.numeric.run_all()
        for n in ir.names():
            self.ranges.data_only((n, 0))
            self._learned(n)
        # the IR's own indexes, against a scan of the graph
        assert ir.names() == sorted(ir.g.nodes, key=ir.order.__getitem__)
        dangling = {n for n in ir.g.nodes if "_class" in ir.node(n).attr and any(
            loc.decode()[5:] not in ir for loc in ir.node(n).attr["_class"].list.s)}
        assert dangling <= set(ir.dangling_colocations())

    monkeypatch.setattr(Facts, "_carry", checked)
    fixed, report = graphfix.rewrite(_model(gd))
    assert sum(f.fixed for f in report.findings) == HAZARDS
    assert carried.count("grad_scopes") >= HAZARDS - 1 and "_by_op" in carried
    assert {"numeric", "ranges", "_learned"} <= set(carried)


def test_rewrite_is_the_same_with_and_without_carried_facts(tf, monkeypatch):
    gd = _training_graph(tf)
    incremental, report = graphfix.rewrite(_model(gd))
    monkeypatch.setattr(Facts, "_carry", lambda self, prev: None)
    scratch, _ = graphfix.rewrite(_model(gd))
    assert incremental.graph_def.SerializeToString(deterministic=True) == \
        scratch.graph_def.SerializeToString(deterministic=True)
    assert sum(f.fixed for f in report.findings) == HAZARDS


@pytest.mark.parametrize("tokens", [[0, 1, 2, 3, 4, 5, 0, 1], [7, 7, 7, 7, 7, 7, 7, 7]])
def test_fixed_graph_trains_finitely(tf, tokens):
    gd = _training_graph(tf)
    fixed, _ = graphfix.rewrite(_model(gd))
    feeds = {"x:0": np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4), "tokens:0": np.array(tokens, np.int32)}
    results = []
    for graph_def in (gd, fixed.graph_def):
        with tf.Graph().as_default() as g:
            tf.compat.v1.import_graph_def(graph_def, name="")
            with tf.compat.v1.Session(graph=g) as s:
                s.run([g.get_operation_by_name(op.name + "/Assign")  # each variable's initializer
                       for op in g.get_operations() if op.type in ("VariableV2", "VarHandleOp")])
                loss, _ = s.run(["loss:0", "train"], feeds)
                results.append((loss, s.run("w/Read/ReadVariableOp:0")))
    (loss0, w0), (loss1, w1) = results
    assert np.isfinite(loss1) and np.all(np.isfinite(w1))
    if set(tokens) >= set(range(HAZARDS)):  # no term is empty: the fix changes nothing
        assert loss1 == loss0 and np.array_equal(w1, w0)
    else:
        assert not np.isfinite(loss0)



def _spliced_graph(tf):
    """``Log`` with a guard beside it (``Log/graphfix/GF006/Log``) and the
    guard's spliced gradient scope, plus one real gradient node."""
    tf1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [], name="x")
        tf.math.log(x, name="Log")
        guard = tf.math.log(x + 1.0, name="Log/graphfix/GF006/Log")
        tf.math.reciprocal(guard, name="Log/graphfix/GF006/grad/Log/graphfix/GF006/Log_grad/Reciprocal")
        tf.identity(x, name="gradients/Fill")
    return g.as_graph_def()


def test_spliced_scope_follows_renames_when_carried(tf):
    """The owner of a spliced gradient scope moves when the guard takes over
    the op's name (a rename the IR journals) or when only the session's
    renames say so: the carried index re-resolves it as a fresh one does."""
    ir = GraphIR(_spliced_graph(tf))
    member = "Log/graphfix/GF006/grad/Log/graphfix/GF006/Log_grad/Reciprocal"
    scopes = GradScopes(ir, ["gradients"])
    assert scopes.owner_of(member) == "Log/graphfix/GF006/Log"
    # the guard takes over the op's name, as a repair does
    v = ir.version
    ir.rename("Log", "Log_unguarded")
    ir.rename("Log/graphfix/GF006/Log", "Log")
    ir.note_renamed("Log/graphfix/GF006/Log", "Log")
    scopes = scopes.updated(ir, ir.changes_since(v), handover=True)
    _same_scopes(scopes, GradScopes(ir, ["gradients"]))
    assert scopes.owner_of(member) == "Log"
    # a rename recorded with no edit: only the session's renames changed
    ir.note_renamed("Log", "Log_unguarded")
    scopes = scopes.updated(ir, set(), handover=True)
    _same_scopes(scopes, GradScopes(ir, ["gradients"]))
    assert scopes.owner_of(member) == "Log_unguarded"
