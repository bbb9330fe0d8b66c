"""Repairs that hold (issue #10): chained guards stay trainable.

A rule may guard a node another rule created (GF003/GF009 guarding the
``safe_input`` GF006 built); the gradient patch must then replace the spliced
gradient of that node too.  The invariant, checked with
:class:`tests.applied.AppliedChecker`: in the fixed graph every gradient an
``Apply*`` op applies equals ``tf.gradients`` of the fixed loss on the same
feed, on normal and on triggering feeds —

* over random compositions (hypothesis) in which two or three rules fire on
  one term (a probability-like inner op, a singular middle op, a masking or
  reducing outer op), >= 300 of them per run;
* over the whole corpus (tests/corpus), with and without ``--unsafe-fixes``.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import graphfix
from graphfix.core.model import Model
from tests.applied import AppliedChecker

B, D = 4, 3
INNER = ["softmax", "sigmoid", "relu", "exp", "linear"]
MIDDLE = ["log_abs", "log", "where_log", "where_sqrt", "log_one_minus", "sqrt_exp", "reciprocal"]
OUTER = ["mask_sum", "ratio", "boolean_mean", "norm", "label_sum"]
STATS = {"graphs": 0, "compositions": 0, "chained": 0, "feeds": 0, "applied_compared": 0, "mismatches": 0,
         "trigger_nonfinite_applied": 0, "selfcheck_not_fixed": 0}


def _inner(tf, kind, h):
    if kind == "softmax":
        e = tf.exp(h)
        return e / tf.reduce_sum(e, axis=1, keepdims=True)
    if kind == "sigmoid":
        return tf.sigmoid(h)
    if kind == "relu":
        return tf.nn.relu(h)
    if kind == "exp":
        return tf.exp(h)
    return h


def _middle(tf, kind, p):
    if kind == "log_abs":
        return tf.math.log(tf.abs(p))
    if kind == "log":
        return tf.math.log(p)
    if kind == "where_log":
        return tf.where(p > 0, p * tf.math.log(p), tf.zeros_like(p))
    if kind == "where_sqrt":
        return tf.where(p > 0, tf.sqrt(p), tf.zeros_like(p))
    if kind == "log_one_minus":
        return tf.math.log(1e-10 + 1 - p)  # float32: 1e-10 + 1 == 1
    if kind == "sqrt_exp":
        return tf.sqrt(tf.exp(p))
    return tf.math.reciprocal(p)


def _outer(tf, kind, v, ph):
    if kind == "mask_sum":
        return tf.reduce_sum(ph["mask"] * v)
    if kind == "ratio":
        return tf.reduce_sum(v * ph["mask"]) / tf.reduce_sum(ph["mask"])
    if kind == "boolean_mean":
        return tf.reduce_mean(tf.boolean_mask(tf.reduce_sum(v, 1), ph["m"]))
    if kind == "norm":
        return tf.reduce_mean(tf.norm(v, axis=1))
    return -tf.reduce_sum(ph["y"] * v)


def build(tf, comps, shapes=False):
    """One training graph, one term (with its own variable) per composition."""
    g = tf.Graph()
    with g.as_default():
        ph = {"x": tf.compat.v1.placeholder(tf.float32, [B, D], name="x"),
              "y": tf.compat.v1.placeholder(tf.float32, [B, D], name="y"),
              "mask": tf.compat.v1.placeholder(tf.float32, [B, D], name="mask"),
              "m": tf.compat.v1.placeholder(tf.bool, [B], name="m")}
        terms = []
        for k, (inner, middle, outer) in enumerate(comps):
            with tf.name_scope(f"term{k}"):
                w = tf.compat.v1.get_variable(f"w{k}", [D, D], use_resource=k % 2 == 0,
                                              initializer=tf.compat.v1.glorot_uniform_initializer(seed=k + 1))
                v = _middle(tf, middle, _inner(tf, inner, tf.matmul(ph["x"], w)))
                terms.append(_outer(tf, outer, v, ph))
        loss = tf.add_n(terms, name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
        tf.compat.v1.global_variables_initializer()  # "init"
    return g.as_graph_def(add_shapes=shapes)  # _output_shapes: what export_meta_graph writes


def feeds(rs):
    mask = (rs.rand(B, D) > 0.3).astype(np.float32)
    mask[0] = 1.0
    m = rs.rand(B) > 0.5
    m[0] = True
    normal = {"x:0": (rs.randn(B, D) * 0.5).astype(np.float32), "y:0": rs.randn(B, D).astype(np.float32),
              "mask:0": mask, "m:0": m}
    big = rs.randn(B, D).astype(np.float32) * 300.0
    trig1 = {"x:0": big, "y:0": normal["y:0"], "mask:0": np.zeros((B, D), np.float32), "m:0": np.zeros(B, bool)}
    trig2 = {"x:0": np.zeros((B, D), np.float32), "y:0": np.zeros((B, D), np.float32),
             "mask:0": (rs.rand(B, D) > 0.5).astype(np.float32), "m:0": np.zeros(B, bool)}
    return [("normal", normal), ("trigger", trig1), ("trigger", trig2)]


COMPOSITION = st.tuples(st.sampled_from(INNER), st.sampled_from(MIDDLE), st.sampled_from(OUTER))


# Hypothesis derandomizes from the function's source, so any edit would draw
# other compositions; this pins the ones it has always drawn (the seed
# derandomize gave the property when it was a test of its own,
# hypothesis.internal.reflection.function_digest).
@seed(int("422582335916937350749363010866719505907647506278955644068342"
          "5435157323629511354603584431557976679990788087468324145"))
@settings(max_examples=int(os.environ.get("GRAPHFIX_CHAINED_EXAMPLES", "110")), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(comps=st.lists(COMPOSITION, min_size=4, max_size=4), unsafe=st.booleans(), shapes=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def check_chained_repairs(tf, comps, unsafe, shapes, seed):
    gd = build(tf, comps, shapes)
    model = Model(kind="graph_def", text=False, graph_def=gd, path="composition")
    fixed, report = graphfix.rewrite(model, unsafe_fixes=unsafe)
    STATS["graphs"] += 1
    STATS["compositions"] += len(comps)
    for k in range(len(comps)):
        codes = {f.code for f in report.findings if f.node.startswith(f"term{k}/")}
        STATS["chained"] += len(codes) >= 2
    STATS["selfcheck_not_fixed"] += sum(f.note.startswith("not fixed") for f in report.findings)
    checker = AppliedChecker(tf, fixed.graph_def, "loss:0")
    try:
        assert not checker.unpaired, checker.unpaired
        assert len(checker.pairs) == len(comps)
        for kind, feed in feeds(np.random.RandomState(seed)):
            bad, n = checker.check(feed)
            STATS["feeds"] += 1
            STATS["applied_compared"] += n
            STATS["mismatches"] += len(bad)
            assert not bad, (comps, unsafe, kind, bad, [(f.code, f.node, f.fixed, f.note) for f in report.findings])
            if kind == "trigger":  # informational: birthplace guards (issue 11) are not all in yet
                STATS["trigger_nonfinite_applied"] += sum(
                    not np.all(np.isfinite(v)) for v in checker.sess.run(
                        [p[2][0] for p in checker.pairs],
                        {checker.graph.get_tensor_by_name(k): v for k, v in feed.items()}))
    finally:
        checker.close()


def test_chained_repairs_apply_the_gradient_of_the_fixed_loss(tf):
    """The property over every composition drawn, then the totals the issue
    asks for.  One test, so that the totals never depend on which
    pytest-xdist worker ran the property (they were two tests in file order,
    and a worker that steals the second one saw no graph)."""
    STATS.update(dict.fromkeys(STATS, 0))
    check_chained_repairs(tf)
    print(f"\nchained-repair property: {STATS}")
    assert STATS["chained"] >= 300, STATS
    assert STATS["mismatches"] == 0


def _corpus_names():
    from tests.corpus import CASES

    return sorted(n for n, b in CASES.items())


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe-fixes", "unsafe-fixes"])
def test_corpus_applied_gradients_are_the_fixed_loss_gradients(tf, unsafe):
    """The invariant over the whole corpus: every training case rewritten, every
    Apply* op's gradient compared with tf.gradients on its normal and trigger feeds."""
    from tests.corpus import shared as build_case

    compared, bad_all = 0, []
    for name in _corpus_names():
        case = build_case(name)
        if case.train_op is None:
            continue
        model = Model(kind="meta_graph", text=False, graph_def=case.meta_graph_def.graph_def,
                      meta_graph=case.meta_graph_def, path=name)
        fixed, report = graphfix.rewrite(model, unsafe_fixes=unsafe)
        # where every applied gradient is right, the self-check must not cry wolf
        wolf = [f"{name}: {f.code} {f.node}: {f.note}" for f in report.findings if f.note.startswith("not fixed")]
        checker = AppliedChecker(tf, fixed.graph_def, case.loss)
        try:
            assert not checker.unpaired, (name, checker.unpaired)
            assert checker.pairs, name
            for feed in (case.feeds_normal, case.feeds_trigger):
                bad, n = checker.check(feed)
                compared += n
                bad_all += [f"{name}: {b}" for b in bad]
            if not bad_all:
                bad_all += wolf
        finally:
            checker.close()
    print(f"\ncorpus ({'unsafe' if unsafe else 'safe'} fixes): {compared} applied gradients compared, "
          f"{len(bad_all)} mismatches")
    assert compared >= 200
    assert not bad_all, bad_all


ISSUE_GRAPHS = ["chained_manual_softmax_log_abs_sgd", "chained_vae_log_one_minus_sigmoid_adam",
                "chained_vae_reparam_sqrt_exp_adam"]


def _issue_params():
    from tests.corpus import CASES, params

    # the done criterion is about training: only a gap in the training repair makes it an expected failure
    return [p if isinstance(p, str) or "birthplace" in CASES[p.values[0]].known_gap else p.values[0]
            for p in params(ISSUE_GRAPHS)]


@pytest.mark.parametrize("name", _issue_params())
def test_issue_graph_trains_finite_and_unchanged(tf, name):
    """Issue 10's three graphs, rewritten as the issue did (--unsafe-fixes): the
    train op keeps every variable finite over a triggering batch, and normal
    batches train bit-identically (or within float rounding)."""
    from tests.corpus import shared as build_case
    from tests.corpus.runner import run_case

    case = build_case(name)
    model = Model(kind="meta_graph", text=False, graph_def=case.meta_graph_def.graph_def,
                  meta_graph=case.meta_graph_def, path=name)
    fixed, report = graphfix.rewrite(model, unsafe_fixes=True)
    assert report.remaining == 0, [(f.code, f.node, f.note) for f in report.findings]
    poisoned = run_case(case, feeds="trigger", steps=1)["variables"]
    assert not all(np.all(np.isfinite(v)) for v in poisoned.values()), "the trigger does not fire"
    after = run_case(case, fixed.graph_def, feeds="trigger", steps=1)["variables"]
    assert all(np.all(np.isfinite(v)) for v in after.values()), [k for k, v in after.items()
                                                                 if not np.all(np.isfinite(v))]
    a = run_case(case, feeds="normal", steps=3)["variables"]
    b = run_case(case, fixed.graph_def, feeds="normal", steps=3)["variables"]
    for var in a:
        np.testing.assert_allclose(b[var], a[var], rtol=1e-6, atol=1e-7, err_msg=var)


@pytest.mark.parametrize("name", ISSUE_GRAPHS)
def test_issue_graph_rewrite_verify_never_fixed_when_verify_fails(name, tmp_path):
    """`rewrite --unsafe-fixes --verify` on each graph: no finding is reported
    [fixed] in a graph whose verify fails, and then the exit status is 1."""
    from tests.corpus import shared as build_case
    from tests.helpers import cli, run_cli

    src = tmp_path / "model.meta"
    src.write_bytes(build_case(name).meta_graph_def.SerializeToString(deterministic=True))
    args = ("rewrite", src, tmp_path / "fixed.meta", "--unsafe-fixes", "--verify")
    # the first graph through a real `python cli.py`, the others through cli.main in this process
    r = cli(*args, timeout=900) if name == ISSUE_GRAPHS[0] else run_cli(*args)
    assert r.returncode in (0, 1), r.stderr
    fixed_lines = [ln for ln in r.stdout.splitlines() if ln.endswith("[fixed]") or "[fixed]" in ln.split(":")[-1]]
    if "verify: FAILED" in r.stdout:
        assert r.returncode == 1 and not fixed_lines, r.stdout
    else:
        assert "verify: OK" in r.stdout and r.returncode == 0 and fixed_lines, r.stdout
