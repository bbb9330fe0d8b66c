"""Control flow (issue #5): v1 ``tf.while_loop`` and ``tf.cond`` training graphs,
and TF2 functional control flow passing through untouched.

* a GF001 hazard *outside* a loop, in a graph with an RNN unrolled by
  ``tf.while_loop``: fixed by the local gradient patch, trains;
* a hazard *inside* the loop body: the gradient is a second while loop fed by
  stacks, so graphfix regenerates it with ``tf.gradients`` from the
  MetaGraphDef's while contexts (graphfix/patch/regenerate.py); a bare GraphDef has
  no contexts, so there the finding stays unfixed with a note;
* a hazard inside a v1 ``tf.cond`` branch;
* ``If``/``While`` with a function library (control flow v2): repaired inside
  the function body, gradient regenerated (issue #12).
"""

import numpy as np
import pytest

import graphfix
from graphfix.core.model import Model
from graphfix.patch.regenerate import load_contexts
from tests.corpus.v2flow import control_flow_v2
from tests.trainutil import assert_finite, assert_identical, assert_poisoned, rewrite, train

T, B, F, H = 4, 6, 3, 5


def rnn(tf, inside, resource=True, opt="adam", hand_guard=False, term="mean"):
    """An RNN over T steps (tf.while_loop + TensorArray) trained with ``opt`` and
    gradient clipping; the masked mean is over the last state (outside) or
    accumulated over the steps (inside the loop body).  Returns the MetaGraphDef."""
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [T, B, F], name="x")
        mask = tf.compat.v1.placeholder(tf.float32, [B], name="mask")
        init = tf.compat.v1.glorot_uniform_initializer
        w = tf.compat.v1.get_variable("rnn/w", [F, H], initializer=init(seed=1), use_resource=resource)
        u = tf.compat.v1.get_variable("rnn/u", [H, H], initializer=init(seed=2), use_resource=resource)
        weight = tf.compat.v1.get_variable("loss/weight", [], initializer=tf.compat.v1.ones_initializer(),
                                           use_resource=resource)

        def masked_mean(h):
            if term == "ratio":  # a masked sum over the mask's sum: 0/0 on an all-zero mask
                return tf.reduce_sum(h[:, 0] * mask) / tf.reduce_sum(mask)
            if term == "count":  # ... over a count of the positive entries
                return tf.reduce_sum(h[:, 0] * mask) / tf.reduce_sum(tf.cast(mask > 0, tf.float32))
            sel = tf.boolean_mask(h[:, 0], mask > 0)
            if hand_guard:
                return tf.where(tf.size(sel) > 0, tf.reduce_mean(sel), tf.zeros([]))
            return tf.reduce_mean(sel)  # NaN when the mask is all zero

        def body(t, h, acc, ta):
            h = tf.tanh(tf.matmul(x[t], w) + tf.matmul(h, u))
            if inside:
                acc = acc + weight * masked_mean(h)
            return t + 1, h, acc, ta.write(t, h)

        ta = tf.TensorArray(tf.float32, size=T)
        _, h, acc, ta = tf.compat.v1.while_loop(lambda t, *a: t < T, body,
                                                [tf.constant(0), tf.zeros([B, H]), tf.constant(0.0), ta])
        term = acc if inside else weight * masked_mean(h)
        loss = tf.add(tf.reduce_mean(tf.square(ta.stack())), term, name="loss")
        o = tf.compat.v1.train.AdamOptimizer(0.05) if opt == "adam" else \
            tf.compat.v1.train.GradientDescentOptimizer(0.1)
        grads, variables = zip(*o.compute_gradients(loss))
        grads, _ = tf.clip_by_global_norm(grads, 5.0)
        o.apply_gradients(zip(grads, variables), name="train")
        tf.compat.v1.global_variables_initializer()
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.LOSSES, loss)
        return tf.compat.v1.train.export_meta_graph()


def feeds(n=4, alternate=False):
    rs = np.random.RandomState(5)
    out = []
    for i in range(n):
        mask = (rs.rand(B) > 0.5).astype(np.float32)
        mask[i % B] = 1.0
        if alternate and i % 2:
            mask[:] = 0.0
        out.append({"x:0": rs.randn(T, B, F).astype(np.float32), "mask:0": mask})
    return out


@pytest.mark.parametrize("as_meta", [False, True], ids=["graphdef", "meta"])
def test_hazard_outside_the_loop(tf, as_meta):
    meta = rnn(tf, inside=False)
    original = meta if as_meta else meta.graph_def
    fixed = rewrite(original)
    assert_identical(train(tf, original, ["train"], feeds()), train(tf, fixed, ["train"], feeds()))
    assert_poisoned(train(tf, original, ["train"], feeds(alternate=True)))
    assert_finite(train(tf, fixed, ["train"], feeds(alternate=True)))


@pytest.mark.parametrize("resource,opt", [(True, "adam"), (False, "sgd")], ids=["resource-adam", "ref-sgd"])
def test_hazard_inside_the_loop_is_regenerated(tf, resource, opt):
    meta = rnn(tf, inside=True, resource=resource, opt=opt)
    fixed = rewrite(meta)  # a .meta: regenerated from the while contexts
    # Node names are kept: every node of the original is still there (the old
    # gradient's nodes replaced by regenerated ones of the same name) except
    # the gradient scope of the replaced Mean, now the guard's gradient.
    names = {n.name for n in fixed.graph_def.node}
    gone = {n.name for n in meta.graph_def.node} - names
    assert gone and all(n.startswith("gradients/while/Mean_grad/") for n in gone), sorted(gone)
    assert any(n.startswith("gradients/while/Mean/graphfix/GF001/Mean_grad/") for n in names)
    # The while context stays the single forward loop, lists the guard's nodes
    # and names only nodes that exist.
    ctx = load_contexts(fixed.collection_def)["while_context"]
    assert len(ctx) == 1
    values = {v.rsplit(":", 1)[0] for v in ctx[0].values_def.values}
    assert values <= names and "while/Mean/graphfix/GF001/nonempty" in values
    assert list(fixed.collection_def["train_op"].node_list.value) == ["train"]

    # It imports with import_meta_graph and trains: same as the original on
    # normal batches, finite on alternating ones, and bit-for-bit what the
    # same model with the guard written by hand in the loop body does.
    assert_identical(train(tf, meta, ["train"], feeds()), train(tf, fixed, ["train"], feeds()))
    assert_poisoned(train(tf, meta, ["train"], feeds(alternate=True)))
    got = train(tf, fixed, ["train"], feeds(alternate=True))
    assert_finite(got)
    by_hand = rnn(tf, inside=True, resource=resource, opt=opt, hand_guard=True)
    assert_identical(got, train(tf, by_hand, ["train"], feeds(alternate=True)))

    # verify: tf.gradients on the re-imported graph, normal and trigger feeds.
    orig_model = Model(kind="meta_graph", text=False, graph_def=meta.graph_def, meta_graph=meta)
    fixed_model = Model(kind="meta_graph", text=False, graph_def=fixed.graph_def, meta_graph=fixed)
    result = graphfix.verify(orig_model, fixed_model, trials=1)
    assert result.ok and result.bit_identical and result.triggered, result.render()
    assert result.counts["grads"] == 3


@pytest.mark.parametrize("term", ["ratio", "count"])
def test_zero_denominator_inside_the_loop_body_is_found_and_repaired(tf, term):
    """The division by a per-step mask sum sits in the while body: the
    analysis follows the values into the loop frame (the loop head joins what
    each iteration brings back), GF002 finds it, and the .meta repair trains."""
    meta = rnn(tf, inside=True, term=term)
    report = graphfix.check(Model(kind="meta_graph", text=False, graph_def=meta.graph_def, meta_graph=meta))
    assert [(f.code, f.node.startswith("while/")) for f in report.findings] == [("GF002", True)], report.findings
    fixed = rewrite(meta, select=("GF002",))
    assert_identical(train(tf, meta, ["train"], feeds()), train(tf, fixed, ["train"], feeds()))
    assert_poisoned(train(tf, meta, ["train"], feeds(alternate=True)))
    assert_finite(train(tf, fixed, ["train"], feeds(alternate=True)))


def test_hazard_inside_the_loop_of_a_bare_graphdef_stays_unfixed(tf):
    gd = rnn(tf, inside=True).graph_def
    model = Model(kind="graph_def", text=False, graph_def=gd)
    fixed, report = graphfix.rewrite(model, select=["GF001"])
    [f] = report.findings
    assert f.node == "while/Mean" and not f.fixed
    assert "while-loop frame" in f.note and ".meta" in f.note
    assert fixed is model  # nothing changed: written back byte-identical


def test_hazard_inside_a_v1_cond_branch(tf):
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [B, F], name="x")
        mask = tf.compat.v1.placeholder(tf.float32, [B], name="mask")
        use_box = tf.compat.v1.placeholder_with_default(True, [], name="use_box")
        w = tf.compat.v1.get_variable("w", [F, 2], initializer=tf.compat.v1.glorot_uniform_initializer(seed=1))
        weight = tf.compat.v1.get_variable("weight", [], initializer=tf.compat.v1.ones_initializer())
        out = tf.matmul(x, w)
        box = tf.compat.v1.cond(use_box, lambda: weight * tf.reduce_mean(tf.boolean_mask(out[:, 1], mask > 0)),
                                lambda: tf.constant(0.0))
        loss = tf.add(tf.reduce_mean(tf.square(out[:, 0])), box, name="loss")
        tf.compat.v1.train.MomentumOptimizer(0.05, 0.9).minimize(loss, name="train")
        tf.compat.v1.global_variables_initializer()
        meta = tf.compat.v1.train.export_meta_graph()
    rs = np.random.RandomState(1)
    batches = [{"x:0": rs.randn(B, F).astype(np.float32), "mask:0": np.float32([1, 0, 1, 0, 0, 1])},
               {"x:0": rs.randn(B, F).astype(np.float32), "mask:0": np.zeros(B, np.float32)}]
    for original in (meta.graph_def, meta):
        fixed = rewrite(original)
        assert_identical(train(tf, original, ["train"], batches[:1]), train(tf, fixed, ["train"], batches[:1]))
        assert_poisoned(train(tf, original, ["train"], batches))
        assert_finite(train(tf, fixed, ["train"], batches))


def _functional(tf, kind):
    """A training graph built with control flow v2: the masked mean inside an
    ``If`` branch or a ``While`` body (function library)."""
    g = tf.Graph()
    with g.as_default(), control_flow_v2():
        x = tf.compat.v1.placeholder(tf.float32, [B, F], name="x")
        mask = tf.compat.v1.placeholder(tf.float32, [B], name="mask")
        w = tf.compat.v1.get_variable("w", [F, 2], initializer=tf.compat.v1.glorot_uniform_initializer(seed=1))
        out = tf.matmul(x, w)
        if kind == "if":
            flag = tf.compat.v1.placeholder_with_default(True, [], name="use_box")
            box = tf.cond(flag, lambda: tf.reduce_mean(tf.boolean_mask(out[:, 1], mask > 0)),
                          lambda: tf.constant(0.0))
        else:
            _, box = tf.while_loop(lambda i, a: i < 2,
                                   lambda i, a: (i + 1, a + tf.reduce_mean(tf.boolean_mask(out[:, 1], mask > 0))),
                                   [tf.constant(0), tf.constant(0.0)])
        loss = tf.add(tf.reduce_mean(tf.square(out[:, 0])), box, name="loss")
        tf.compat.v1.train.AdamOptimizer(0.1).minimize(loss, name="train")
    return g.as_graph_def()


@pytest.mark.parametrize("kind", ["if", "while"])
def test_functional_control_flow_is_repaired(tf, tmp_path, kind):
    """Issue #12: the hazard inside the function body is guarded in a new
    FunctionDef and the gradient regenerated (tests/test_v2_control_flow.py
    covers the v2 corpus)."""
    gd = _functional(tf, kind)
    ops = {n.op for n in gd.node}
    assert ops & {"If", "StatelessIf", "While", "StatelessWhile"}, ops
    src = tmp_path / "v2.pb"
    src.write_bytes(gd.SerializeToString())
    model = graphfix.load(str(src))
    fixed, report = graphfix.rewrite(model)
    inside = [f for f in report.findings if f.code == "GF001"]
    assert inside and all(f.fixed for f in inside), report.findings
    assert all(f.data["function"] in {fn.signature.name for fn in gd.library.function} for f in inside)
    out = tmp_path / "v2.fixed.pb"
    graphfix.save(fixed, str(out))
    again = graphfix.load(str(out))
    result = graphfix.verify(model, again, trials=2)
    assert result.ok and result.bit_identical and result.triggered, result.render()


def test_loop_hazard_feeding_two_losses_with_two_optimizers(tf):
    """Both gradient prefixes (Momentum on the RNN, Adam on the loss weight,
    ref variables, var_list) read the loop's hazard: both are regenerated."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [T, B, F], name="x")
        mask = tf.compat.v1.placeholder(tf.float32, [B], name="mask")
        init = tf.compat.v1.glorot_uniform_initializer
        w = tf.compat.v1.get_variable("w", [F, H], initializer=init(seed=1), use_resource=False)
        u = tf.compat.v1.get_variable("u", [H, H], initializer=init(seed=2), use_resource=False)
        k = tf.compat.v1.get_variable("k", [], initializer=tf.compat.v1.ones_initializer(), use_resource=False)

        def body(t, h, acc):
            h = tf.tanh(tf.matmul(x[t], w) + tf.matmul(h, u))
            return t + 1, h, acc + k * tf.reduce_mean(tf.boolean_mask(h[:, 0], mask > 0))

        _, h, acc = tf.compat.v1.while_loop(lambda t, *a: t < T, body,
                                            [tf.constant(0), tf.zeros([B, H]), tf.constant(0.0)])
        loss = tf.add(acc, tf.reduce_mean(tf.square(h)), name="loss")
        loss2 = tf.multiply(acc, 2.0, name="loss2")
        tf.compat.v1.train.MomentumOptimizer(0.05, 0.9).minimize(loss, var_list=[w, u], name="train")
        tf.compat.v1.train.AdamOptimizer(0.05).minimize(loss2, var_list=[k], name="train2")
        tf.compat.v1.global_variables_initializer()
        meta = tf.compat.v1.train.export_meta_graph()
    fixed = rewrite(meta)
    a = Model(kind="meta_graph", text=False, graph_def=meta.graph_def, meta_graph=meta)
    b = Model(kind="meta_graph", text=False, graph_def=fixed.graph_def, meta_graph=fixed)
    result = graphfix.verify(a, b, trials=2)
    assert result.ok and result.bit_identical and result.triggered, result.render()
    assert result.train_ops == ["train", "train2"] and result.counts["loss"] == 2
    assert_finite(train(tf, fixed, ["train", "train2"], feeds(alternate=True)))


def test_forward_only_loop_guard_runs_in_the_loop_frame(tf):
    """No optimizer: only the forward guard.  Its constants must live in the
    loop's frame (TensorFlow rejects "inputs from different frames")."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [T, B], name="x")
        mask = tf.compat.v1.placeholder(tf.float32, [B], name="mask")
        _, acc = tf.compat.v1.while_loop(
            lambda t, a: t < T, lambda t, a: (t + 1, a + tf.reduce_mean(tf.boolean_mask(x[t], mask > 0))),
            [tf.constant(0), tf.constant(0.0)])
        tf.identity(acc, name="score")
    fixed = rewrite(g.as_graph_def())
    consts = [n for n in fixed.node if "graphfix" in n.name and n.op == "Const"]
    assert consts and all(n.input and n.input[0].startswith("^while/") for n in consts)
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(fixed, name="")
        with tf.compat.v1.Session() as sess:
            xs = np.arange(T * B, dtype=np.float32).reshape(T, B)
            assert sess.run("score:0", {"x:0": xs, "mask:0": np.zeros(B, np.float32)}) == 0.0
            m = np.float32([1, 0, 0, 1, 0, 0])
            want = sum(xs[t][m > 0].mean() for t in range(T))
            assert np.isclose(sess.run("score:0", {"x:0": xs, "mask:0": m}), want, rtol=1e-6)
