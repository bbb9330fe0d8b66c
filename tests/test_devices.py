"""Devices (issue #5): every node keeps its device, new nodes take their
anchor's, ``--clear-devices`` drops all of them (GraphDef, MetaGraphDef,
SavedModel) — which makes a graph placed on a GPU this machine lacks runnable."""
import numpy as np
import pytest

import graphfix
from tests.helpers import run_cli

B, F = 8, 4
GPU, CPU = "/device:GPU:0", "/device:CPU:0"


def placed(tf):
    """Inputs and variables on the CPU, the head, loss and optimizer on a GPU."""
    g = tf.Graph()
    with g.as_default():
        with tf.device(CPU):
            x = tf.compat.v1.placeholder(tf.float32, [B, F], name="x")
            labels = tf.compat.v1.placeholder(tf.float32, [B], name="labels")
            w = tf.compat.v1.get_variable("w", [F, 2], initializer=tf.compat.v1.glorot_uniform_initializer(seed=1))
            weight = tf.compat.v1.get_variable("weight", [], initializer=tf.compat.v1.ones_initializer())
        with tf.device(GPU):
            out = tf.matmul(x, w)
            box = tf.reduce_mean(tf.boolean_mask(tf.abs(out[:, 1]), labels > 0))
            loss = tf.add(tf.reduce_mean(tf.square(out[:, 0] - labels)), weight * box, name="loss")
            tf.compat.v1.train.AdamOptimizer(0.1).minimize(loss, name="train")
        with tf.device(CPU):
            tf.compat.v1.global_variables_initializer()
        meta = tf.compat.v1.train.export_meta_graph(clear_devices=False)
    return meta


def _run(tf, gd, soft=False):
    """w, weight and the loss after one step on a batch without positives."""
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
        fetch = [tf.raw_ops.ReadVariableOp(resource=g.get_tensor_by_name(v), dtype=tf.float32)
                 for v in ("w:0", "weight:0")] + [g.get_tensor_by_name("loss:0")]
    rs = np.random.RandomState(0)
    fd = {"x:0": rs.randn(B, F).astype(np.float32), "labels:0": np.zeros(B, np.float32)}
    config = tf.compat.v1.ConfigProto(allow_soft_placement=soft)
    with tf.compat.v1.Session(graph=g, config=config) as sess:
        sess.run("init")
        sess.run("train", fd)
        return sess.run(fetch, fd)


def test_devices_kept_and_new_nodes_take_the_anchors(tf, tmp_path):
    meta = placed(tf)
    gd = meta.graph_def
    src = tmp_path / "placed.pb"
    src.write_bytes(gd.SerializeToString())
    model = graphfix.load(str(src))
    fixed, report = graphfix.rewrite(model, select=["GF001"])
    [f] = report.findings
    assert f.fixed
    before = {n.name: n.device for n in gd.node}
    after = {n.name: n.device for n in fixed.graph_def.node}
    assert {d for d in before.values()} >= {CPU, GPU}  # (TF leaves colocated initialisers unplaced)
    assert {k: v for k, v in after.items() if k in before} == {k: before[k] for k in after if k in before}
    anchor_device = before[f.node]
    assert anchor_device == GPU
    new = [n for n in after if n not in before]
    assert new and set(f.new_nodes) <= set(after)
    assert all(after[n] == anchor_device for n in new), {n: after[n] for n in new if after[n] != anchor_device}

    # Not runnable here as placed (no GPU) ...
    with pytest.raises(tf.errors.InvalidArgumentError):
        _run(tf, fixed.graph_def)
    # ... and runnable after --clear-devices (the result with soft placement is the reference).
    out = tmp_path / "cleared.pb"
    r = run_cli("rewrite", src, out, "--select", "GF001", "--clear-devices")
    assert r.returncode == 0, r.stdout + r.stderr
    cleared = graphfix.load(str(out)).graph_def
    assert all(n.device == "" for n in cleared.node)
    got = _run(tf, cleared)
    assert all(np.all(np.isfinite(v)) for v in got)
    assert all(np.array_equal(a, b) for a, b in zip(got, _run(tf, fixed.graph_def, soft=True)))


def test_clear_devices_meta_and_saved_model(tf, tmp_path):
    meta = placed(tf)
    src = tmp_path / "placed.meta"
    src.write_bytes(meta.SerializeToString())
    out = tmp_path / "cleared.meta"
    r = run_cli("rewrite", src, out, "--clear-devices", "--select", "GF001")  # (the real CLI: above)
    assert r.returncode == 0, r.stdout + r.stderr
    m = graphfix.load(str(out)).meta_graph
    assert all(n.device == "" for n in m.graph_def.node)
    got = _run(tf, m.graph_def)
    assert all(np.all(np.isfinite(v)) for v in got)

    # A SavedModel: build one from the placed graph, then clear.
    sm = tmp_path / "sm"
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.train.import_meta_graph(meta)
        with tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(allow_soft_placement=True)) as sess:
            sess.run("init")
            b = tf.compat.v1.saved_model.Builder(str(sm))
            b.add_meta_graph_and_variables(sess, ["train"], clear_devices=False)
            b.save()
    assert any(n.device == GPU for n in graphfix.load(str(sm)).graph_def.node)
    out = tmp_path / "sm_cleared"
    r = run_cli("rewrite", sm, out, "--clear-devices", "--select", "GF001")
    assert r.returncode == 0, r.stdout + r.stderr
    saved = graphfix.load(str(out))
    assert saved.kind == "saved_model"
    assert all(n.device == "" for mg in saved.saved_model.meta_graphs for n in mg.graph_def.node)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        tf.compat.v1.saved_model.loader.load(sess, ["train"], str(out))
        rs = np.random.RandomState(0)
        fd = {"x:0": rs.randn(B, F).astype(np.float32), "labels:0": np.zeros(B, np.float32)}
        sess.run("train", fd)
        assert np.isfinite(sess.run("loss:0", fd))
