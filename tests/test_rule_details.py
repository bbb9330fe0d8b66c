"""Rule behaviour beyond the corpus: dtypes, devices, GF007, unsafe fixes,
report contents — each executed in TensorFlow."""
import numpy as np
import pytest

import graphfix
from graphfix.core.model import Model
from graphfix.verification.runner import execute


def _model(gd):
    return Model(kind="graph_def", text=False, graph_def=gd, path="test", raw=gd.SerializeToString())


def _run(tf, gd, fetch, feeds, grads_of=None):
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
        out = g.get_tensor_by_name(fetch)
        fetches = [out]
        if grads_of:
            fetches += tf.compat.v1.gradients(out, [g.get_tensor_by_name(t) for t in grads_of])
        with tf.compat.v1.Session(graph=g) as s:
            return s.run(fetches, {g.get_tensor_by_name(k): v for k, v in feeds.items()})


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_guards_keep_dtype(tf, dtype):
    dt = tf.as_dtype(dtype)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(dt, [4], name="x")
        m = tf.compat.v1.placeholder(tf.bool, [4], name="m")
        p = tf.compat.v1.placeholder(dt, [4], name="p")
        ent = tf.reduce_sum(tf.where(p > 0, p * tf.math.log(p), tf.zeros_like(p)))
        tf.identity(tf.reduce_mean(tf.boolean_mask(x, m)) + ent, name="loss")
    # The test differentiates the loss (w.r.t. its inputs): --loss says so.
    fixed, report = graphfix.rewrite(_model(g.as_graph_def()), losses=["loss:0"])
    assert {f.code for f in report.findings} == {"GF001", "GF003"} and report.remaining == 0
    normal = {"x:0": np.array([1, 2, 3, 4], dtype), "m:0": np.array([1, 0, 1, 0], bool),
              "p:0": np.array([0.1, 0.2, 0.3, 0.4], dtype)}
    trigger = {"x:0": np.array([1, 2, 3, 4], dtype), "m:0": np.zeros(4, bool),
               "p:0": np.array([0.0, 0.5, 0.0, 0.5], dtype)}
    a = _run(tf, g.as_graph_def(), "loss:0", normal, ["x:0", "p:0"])
    b = _run(tf, fixed.graph_def, "loss:0", normal, ["x:0", "p:0"])
    for u, v in zip(a, b):
        assert np.asarray(v).dtype == np.dtype(dtype)
        np.testing.assert_array_equal(u, v)
    b = _run(tf, fixed.graph_def, "loss:0", trigger, ["x:0", "p:0"])
    assert all(np.all(np.isfinite(v)) for v in b)


def test_new_nodes_take_device_and_clear_devices_drops_all(tf):
    g = tf.Graph()
    with g.as_default():
        with tf.device("/device:GPU:0"):
            x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
            m = tf.compat.v1.placeholder(tf.bool, [4], name="m")
            tf.identity(tf.reduce_mean(tf.boolean_mask(x, m)), name="loss")
    gd = g.as_graph_def()
    fixed, report = graphfix.rewrite(_model(gd))
    new = [n for n in fixed.graph_def.node if "/graphfix/" in n.name]
    assert new and all(n.device == "/device:GPU:0" for n in new)
    old = {n.name: n.device for n in gd.node}
    assert all(n.device == old[n.name] for n in fixed.graph_def.node if n.name in old)

    cleared, _ = graphfix.rewrite(_model(gd), clear_devices=True)
    assert all(n.device == "" for n in cleared.graph_def.node)
    out = _run(tf, cleared.graph_def, "loss:0", {"x:0": np.ones(4, np.float32), "m:0": np.zeros(4, bool)})
    assert out[0] == 0.0


def test_stop_gradient_removes_only_the_named_term(tf):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.constant_initializer(2.0), use_resource=False)
        metric = tf.reduce_mean(tf.abs(w * x), name="metric")
        fit = tf.reduce_mean(tf.square(w * x - 1.0), name="fit")
        loss = tf.add(fit, 0.1 * metric, name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
        tf.compat.v1.global_variables_initializer()
    gd = g.as_graph_def()
    with pytest.raises(graphfix.GraphfixError, match="no such node"):
        graphfix.rewrite(_model(gd), options={"stop_gradient": ["nope"]})
    fixed, report = graphfix.rewrite(_model(gd), options={"stop_gradient": ["metric"]})
    assert [f.code for f in report.findings] == ["GF007"] and report.fixed == 1
    feeds = {"x:0": np.array([1.0, -2.0, 3.0, 0.5], np.float32)}
    a = execute(gd, feeds, ["loss:0", "fit:0"], "train", steps=1)
    b = execute(fixed.graph_def, feeds, ["loss:0", "fit:0"], "train", steps=1)
    assert a.loss["loss:0"] == b.loss["loss:0"]  # the value still counts the metric
    # The optimizer now follows d fit / dw only.
    np.testing.assert_allclose(list(b.applied.values())[0], a.grads["fit:0 / w"], rtol=1e-6)
    assert not np.allclose(list(a.applied.values())[0], a.grads["fit:0 / w"])


def test_unsafe_fixes_only_with_the_flag(tf):
    g = tf.Graph()
    with g.as_default():
        z = tf.compat.v1.placeholder(tf.float32, [2, 3], name="z")
        e = tf.exp(z)
        tf.identity(tf.reduce_sum(e / tf.reduce_sum(e, axis=1, keepdims=True)), name="loss")
    gd = g.as_graph_def()
    model = _model(gd)
    same, report = graphfix.rewrite(model, select=["GF008"])
    assert same is model and report.remaining == 1 and report.findings[0].safety == "unsafe"
    fixed, report = graphfix.rewrite(model, select=["GF008"], unsafe_fixes=True)
    assert report.remaining == 0
    normal = {"z:0": np.array([[1, 2, 3], [0, -1, 5]], np.float32)}
    np.testing.assert_array_equal(_run(tf, gd, "loss:0", normal, ["z:0"])[1],
                                  _run(tf, fixed.graph_def, "loss:0", normal, ["z:0"])[1])
    huge = {"z:0": np.array([[100, 2, 3], [0, -1, 500]], np.float32)}
    assert not np.isfinite(_run(tf, gd, "loss:0", huge)[0])
    assert all(np.all(np.isfinite(v)) for v in _run(tf, fixed.graph_def, "loss:0", huge, ["z:0"]))


def test_check_reports_every_field():
    import tensorflow as tf

    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        lengths = tf.compat.v1.placeholder(tf.int32, [2], name="lengths")
        mask = tf.cast(tf.sequence_mask(lengths, 2), tf.float32)
        tf.identity(tf.reduce_sum(tf.reshape(x, [2, 2]) * mask) / tf.reduce_sum(mask), name="loss")
    report = graphfix.check(_model(g.as_graph_def()))
    [f] = report.findings
    data = f.to_json()
    assert (data["code"], data["rule"], data["node"], data["op"], data["guard"], data["safety"], data["fixed"]) == \
        ("GF002", "zero-denominator", "truediv", "RealDiv", "div_no_nan", "safe", False)
    assert report.losses == ["loss:0"]


def test_masked_mean_unsafe_fix_averages_over_valid_elements(tf):
    """GF010: reported by default, repaired only with --unsafe-fixes; the repair
    is the mean over the valid elements (equal to the original when none is
    masked) and 0 when there are none."""
    g = tf.Graph()
    with g.as_default():
        w = tf.compat.v1.get_variable("w", [], initializer=tf.constant_initializer(2.0), use_resource=False)
        x = tf.compat.v1.placeholder(tf.float32, [2, 4], name="x")
        lengths = tf.compat.v1.placeholder(tf.int32, [2], name="lengths")
        per = tf.square(x * w)
        tf.identity(tf.reduce_mean(tf.where(tf.sequence_mask(lengths, 4), per, tf.zeros_like(per))), name="loss")
        tf.compat.v1.global_variables_initializer()
    gd = g.as_graph_def()
    fixed, report = graphfix.rewrite(_model(gd))
    assert [f.code for f in report.findings] == ["GF010"] and report.remaining == 1 and fixed.changed is False
    fixed, report = graphfix.rewrite(_model(gd), unsafe_fixes=True)
    assert report.remaining == 0

    def run(graph_def, feeds):
        g2 = tf.Graph()
        with g2.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
            loss = g2.get_tensor_by_name("loss:0")
            grad = tf.compat.v1.gradients(loss, [g2.get_tensor_by_name("w:0")])[0]
            with tf.compat.v1.Session(graph=g2) as s:
                s.run(g2.get_operation_by_name("init"))
                return s.run([loss, grad], {g2.get_tensor_by_name(k): v for k, v in feeds.items()})

    xs = np.arange(8, dtype=np.float32).reshape(2, 4) / 4
    full = {"x:0": xs, "lengths:0": np.array([4, 4], np.int32)}
    for u, v in zip(run(gd, full), run(fixed.graph_def, full)):
        np.testing.assert_allclose(v, u, rtol=1e-6)
    part = {"x:0": xs, "lengths:0": np.array([3, 1], np.int32)}
    loss, _ = run(fixed.graph_def, part)
    valid = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool)
    np.testing.assert_allclose(loss, np.mean(np.square(xs * 2.0)[valid]), rtol=1e-6)
    empty = {"x:0": xs, "lengths:0": np.array([0, 0], np.int32)}
    assert run(fixed.graph_def, empty)[0] == 0.0


def test_opt_in_rules_run_only_when_selected(monkeypatch, tf, default_rules):
    import rewrites

    monkeypatch.setattr(rewrites.MaskedMean, "default", False)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        m = tf.compat.v1.placeholder(tf.bool, [4], name="m")
        tf.identity(tf.reduce_mean(tf.where(m, x, tf.zeros_like(x))), name="loss")
    model = _model(g.as_graph_def())
    assert graphfix.check(model).found == 0
    assert [f.code for f in graphfix.check(model, select=["GF010"]).findings] == ["GF010"]
    assert [f.code for f in graphfix.check(model, select=["masked-mean"]).findings] == ["GF010"]


def test_rewrite_reports_what_check_reports_when_an_eval_metric_sits_beside_the_loss(tf):
    """After the first guard is spliced into the gradient subgraph, the losses and
    gradient calls stay those of the graph as read: an evaluation metric's
    division (no gradient, not the loss) does not become a finding mid-rewrite."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4, 3], name="x")
        y = tf.compat.v1.placeholder(tf.float32, [4, 3], name="y")
        w = tf.compat.v1.get_variable("w", [3, 3], initializer=tf.constant_initializer(0.1), use_resource=False)
        pred = tf.matmul(x, w)
        observed = tf.cast(tf.not_equal(y, 0.0), tf.float32)
        count = tf.cast(tf.math.count_nonzero(y), tf.float32)
        loss = tf.math.truediv(tf.reduce_sum(tf.square(pred * observed - y)), tf.reduce_sum(observed), name="loss")
        tf.compat.v1.train.AdamOptimizer(0.01).minimize(loss, name="train")
        tf.math.truediv(tf.reduce_sum(tf.abs(pred * observed - y)), count, name="eval_mae")  # a sink, no gradient
    model = _model(g.as_graph_def())
    checked = [(f.code, f.node) for f in graphfix.check(model).findings]
    fixed, report = graphfix.rewrite(model)
    assert checked == [("GF002", "loss")] and [(f.code, f.node) for f in report.findings] == checked
    assert report.remaining == 0


def _policy_graph(tf, form):
    """A REINFORCE-style loss -mean(log(p[a]) * advantage), p = softmax, in one of
    the three ways graphs pick p[a] by a fed action: gather_nd, a sum against
    tf.one_hot(a), a sum against a one-hot fed as floats."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        adv = tf.compat.v1.placeholder(tf.float32, [None], name="advantage")
        w = tf.compat.v1.get_variable("w", [4, 3], initializer=tf.constant_initializer(
            np.linspace(-1, 1, 12).reshape(4, 3)), use_resource=False)
        p = tf.nn.softmax(tf.matmul(x, w))
        if form == "gather":
            a = tf.compat.v1.placeholder(tf.int32, [None, 2], name="actions")
            picked = tf.gather_nd(p, a)
        elif form == "one_hot":
            a = tf.compat.v1.placeholder(tf.int32, [None], name="actions")
            picked = tf.reduce_sum(p * tf.one_hot(a, 3), axis=1)
        else:
            a = tf.compat.v1.placeholder(tf.float32, [None, 3], name="actions")
            picked = tf.reduce_sum(p * a, axis=1)
        loss = tf.negative(tf.reduce_mean(tf.math.log(picked, name="logp") * adv), name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return g


@pytest.mark.parametrize("form", ["gather", "one_hot", "fed_one_hot"])
def test_log_of_a_picked_probability_is_gf011s_opt_in(tf, form, default_rules):
    """On-policy logs p[a] are GF011's (opt-in): the default rules report
    nothing on them (not GF005, nor GF006 for log(p[a]) * advantage), the
    report counts them, and --select GF011 finds and fixes them."""
    model = _model(_policy_graph(tf, form).as_graph_def())
    report = graphfix.check(model)
    assert report.found == 0 and report.opt_in == {"GF011": 1}, (report.findings, report.opt_in)
    fixed, report = graphfix.rewrite(model)
    assert fixed is model
    report = graphfix.check(model, select=["GF011"])
    assert [(f.code, f.node) for f in report.findings] == [("GF011", "logp")]
    fixed, report = graphfix.rewrite(model, select=["GF011"], unsafe_fixes=True)
    assert report.fixed == 1
    rs = np.random.RandomState(0)
    feeds = {"x:0": rs.randn(4, 4).astype(np.float32) * 1e4, "advantage:0": np.ones(4, np.float32)}
    worst = np.argmin(feeds["x:0"] @ np.linspace(-1, 1, 12).reshape(4, 3), axis=1)  # p underflows to 0 there
    feeds["actions:0"] = {"gather": np.stack([np.arange(4), worst], 1).astype(np.int32),
                          "one_hot": worst.astype(np.int32),
                          "fed_one_hot": np.eye(3, dtype=np.float32)[worst]}[form]
    before = execute(model.graph_def, feeds, ["loss:0"], None)
    after = execute(fixed.graph_def, feeds, ["loss:0"], None)
    assert not before.finite() and after.finite(), (before, after)


def test_a_supervised_log_softmax_stays_gf005(tf, default_rules):
    """-sum(y * log(softmax)) takes the log before the labels pick: GF005, on by default."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        y = tf.compat.v1.placeholder(tf.float32, [None, 3], name="y")
        w = tf.compat.v1.get_variable("w", [4, 3], use_resource=False)
        loss = tf.negative(tf.reduce_sum(y * tf.math.log(tf.nn.softmax(tf.matmul(x, w)), name="logp")), name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    assert [(f.code, f.node) for f in graphfix.check(_model(g.as_graph_def())).findings] == [("GF005", "logp")]
