"""Behaviour preservation as properties (issue #7).

Random loss graphs are composed from the hazard patterns and ordinary terms
(hypothesis chooses which, how many, their weights and the data).  For each:

* on random *normal* feeds — wherever the original loss and gradients are
  finite — the fixed graph gives the same loss and gradients;
* on random *triggering* feeds the fixed graph's loss and gradients are finite;
* rewriting is deterministic and idempotent.

Feeds compared and mismatches are counted; after the property has run, the
same test asserts the totals (>= 1000 feeds, 0 mismatches) and prints them.
"""
import os
import subprocess
import sys

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import graphfix
from graphfix.core.model import Model
from tests.helpers import ROOT, run_cli

B, D = 6, 4
FEEDS_PER_GRAPH = 18
STATS = {"graphs": 0, "normal_feeds": 0, "trigger_feeds": 0, "mismatches": 0, "skipped_nonfinite_original": 0}

PATTERNS = ["empty_mean", "masked_ratio", "where_entropy", "norm", "log_sigmoid", "masked_log", "plain"]


def build(tf, terms):
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [B, D], name="x")
        y = tf.compat.v1.placeholder(tf.float32, [B, D], name="y")
        m = tf.compat.v1.placeholder(tf.bool, [B], name="m")
        mask = tf.compat.v1.placeholder(tf.float32, [B], name="mask")
        w = tf.compat.v1.get_variable("w", [D, D], initializer=tf.compat.v1.glorot_uniform_initializer(seed=3),
                                      use_resource=False)
        h = tf.matmul(x, w)
        total = []
        for k, (pattern, coef) in enumerate(terms):
            with tf.name_scope(f"term{k}"):
                if pattern == "empty_mean":
                    t = tf.reduce_mean(tf.boolean_mask(tf.reduce_sum(tf.square(h - y), 1), m))
                elif pattern == "masked_ratio":
                    t = tf.reduce_sum(tf.reduce_sum(tf.abs(h), 1) * mask) / tf.reduce_sum(mask)
                elif pattern == "where_entropy":
                    p = tf.nn.relu(h)
                    t = -tf.reduce_sum(tf.where(p > 0, p * tf.math.log(p), tf.zeros_like(p)))
                elif pattern == "norm":
                    t = tf.reduce_mean(tf.norm(h - y, axis=1))
                elif pattern == "log_sigmoid":
                    t = -tf.reduce_mean(tf.math.log(tf.sigmoid(tf.reduce_sum(h, 1))))
                elif pattern == "masked_log":
                    t = tf.reduce_sum(mask * -tf.math.log(tf.reduce_sum(tf.square(h), 1)))
                else:
                    t = tf.reduce_mean(tf.square(h - y))
                total.append(coef * t)
        loss = tf.add_n(total, name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(loss, name="train")
    return g.as_graph_def()


def normal_feed(rs):
    m = rs.rand(B) > 0.5
    m[rs.randint(B)] = True
    mask = (rs.rand(B) > 0.4).astype(np.float32)
    mask[rs.randint(B)] = 1.0
    return {"x:0": rs.randn(B, D).astype(np.float32), "y:0": rs.randn(B, D).astype(np.float32), "m:0": m,
            "mask:0": mask}


def trigger_feed(rs, w_value):
    """Every hazard at once: nothing selected, all padding, h == y (zero norm),
    ReLU outputs exactly 0, saturated sigmoid."""
    kind = rs.randint(3)
    x = np.zeros((B, D), np.float32) if kind == 0 else rs.randn(B, D).astype(np.float32) * (300.0 if kind == 1 else 1)
    y = x @ w_value
    return {"x:0": x, "y:0": y.astype(np.float32), "m:0": np.zeros(B, bool), "mask:0": np.zeros(B, np.float32)}


def run_all(tf, gd, feeds):
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
        loss = g.get_tensor_by_name("loss:0")
        w = g.get_tensor_by_name("w:0")
        grad = tf.compat.v1.gradients(loss, [w])[0]
        applied = [op for op in g.get_operations() if op.type == "ApplyGradientDescent"][0].inputs[2]
        with tf.compat.v1.Session(graph=g) as s:
            s.run(g.get_operation_by_name("w/Assign"))
            w_value = s.run(w)
            out = [s.run([loss, grad, applied], {g.get_tensor_by_name(k): v for k, v in f.items()}) for f in feeds]
    return out, w_value


def _finite(vals):
    return all(np.all(np.isfinite(v)) for v in vals)


# Hypothesis derandomizes from the function's source, so any edit would draw
# other graphs; this pins the 90 it has always drawn (the seed derandomize gave
# the original test, hypothesis.internal.reflection.function_digest).
@seed(int("2246423495793746091451874815951564489945990734307821"
          "0127685195053066562455784279105982884490644804337594620506276514"))
@settings(max_examples=90, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(terms=st.lists(st.tuples(st.sampled_from(PATTERNS), st.sampled_from([0.5, 1.0, 2.0])), min_size=1,
                      max_size=4),
       seed=st.integers(0, 2**31 - 1))
def check_random_loss_graph(tf, terms, seed):
    gd = build(tf, terms)
    model = Model(kind="graph_def", text=False, graph_def=gd, path="random", raw=gd.SerializeToString())
    fixed, report = graphfix.rewrite(model, unsafe_fixes=True)
    assert report.remaining == 0, report.findings
    rs = np.random.RandomState(seed)
    normals = [normal_feed(rs) for _ in range(FEEDS_PER_GRAPH)]
    before, w_value = run_all(tf, gd, normals)
    triggers = [trigger_feed(rs, w_value) for _ in range(3)]
    fixed_vals, _ = run_all(tf, fixed.graph_def, normals + triggers)  # the fixed graph imported once
    after, got = fixed_vals[:len(normals)], fixed_vals[len(normals):]
    STATS["graphs"] += 1
    for a, b in zip(before, after):
        if not _finite(a):
            STATS["skipped_nonfinite_original"] += 1
            continue
        STATS["normal_feeds"] += 1
        ok = all(np.allclose(u, v, rtol=1e-5, atol=1e-6) for u, v in zip(a, b))
        if not ok:
            STATS["mismatches"] += 1
        assert ok, (terms, a, b)
    for vals in got:
        STATS["trigger_feeds"] += 1
        assert _finite(vals), (terms, vals)
    again, report2 = graphfix.rewrite(fixed, unsafe_fixes=True)
    assert again is fixed and report2.found == 0


def test_random_loss_graphs_keep_behaviour(tf):
    """The property over every graph hypothesis draws, then the totals the
    issue asks for.  One test, so that the totals never depend on which
    pytest-xdist worker ran the property (they were two tests in file order)."""
    STATS.update(dict.fromkeys(STATS, 0))
    check_random_loss_graph(tf)
    print(f"\nproperty totals: {STATS}")
    assert STATS["graphs"] >= 80
    assert STATS["normal_feeds"] >= 1000, STATS
    assert STATS["mismatches"] == 0


def test_corpus_output_is_identical_across_hash_seeds(tmp_path):
    """Batch-rewrite the whole corpus twice in fresh processes with different
    PYTHONHASHSEED values: byte-identical outputs; rewriting them changes nothing."""
    from tests.corpus import CASES
    from tests.corpus import shared as build_case

    src = tmp_path / "in"
    src.mkdir()
    for name in sorted(CASES):
        (src / f"{name}.pb").write_bytes(build_case(name).graph_def.SerializeToString(deterministic=True))
    outs = []
    for hashseed in ("0", "4242"):
        out = tmp_path / f"out{hashseed}"
        env = dict(os.environ, PYTHONHASHSEED=hashseed, TF_CPP_MIN_LOG_LEVEL="2")
        # --jobs 1: the models are repaired in the process whose hash seed is set
        # (not in pool workers, each of which would import TensorFlow again)
        r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "rewrite", "--jobs", "1", "--out-dir",
                            str(out), str(src)], capture_output=True, text=True, env=env, timeout=900)
        assert r.returncode in (0, 1), r.stderr[-2000:]
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert len(names) == len(CASES)
    for n in names:
        assert (outs[0] / n).read_bytes() == (outs[1] / n).read_bytes(), n
    again = tmp_path / "again"
    r = run_cli("rewrite", "--out-dir", again, outs[0], "--jobs", "1")  # in-process: no hash seed to vary
    assert r.returncode in (0, 1), r.stderr[-2000:]
    # A case documented as not idempotent yet (tests/corpus known_gap) is left out here.
    gaps = {f"{c}.pb" for c, b in CASES.items() if "idempotent" in b.known_gap}
    for n in names:
        if n not in gaps:
            assert (again / n).read_bytes() == (outs[0] / n).read_bytes(), n
