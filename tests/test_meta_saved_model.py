"""MetaGraphDef and SavedModel v1 (issue #5): collections stay consistent, the
result imports and trains; a SavedModel written by
``tf.compat.v1.saved_model.Builder`` (variables, ``serving_default``, an
asset) is rewritten directory to directory, loads with
``tf.compat.v1.saved_model.loader.load`` and serves its signature."""
import filecmp
import os

import numpy as np
import pytest

import graphfix
from tests.helpers import cli, run_cli

B, F = 8, 4
COLLECTIONS = ("train_op", "losses", "trainable_variables", "variables", "summaries")


def detection(tf):
    """Ops of a small detection head in the default graph; returns a dict of tensors/ops."""
    tf.compat.v1.set_random_seed(0)
    x = tf.compat.v1.placeholder(tf.float32, [None, F], name="features")
    labels = tf.compat.v1.placeholder(tf.float32, [None], name="labels")
    init = tf.compat.v1.glorot_uniform_initializer
    w = tf.compat.v1.get_variable("head/w", [F, 2], initializer=init(seed=1))
    weight = tf.compat.v1.get_variable("loss/box_weight", [], initializer=tf.compat.v1.ones_initializer())
    out = tf.matmul(x, w, name="head/out")
    with tf.name_scope("loss"):
        cls = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=out[:, 0]))
        box = tf.reduce_mean(tf.boolean_mask(tf.abs(out[:, 1]), labels > 0))  # NaN without positives
        loss = tf.add(cls, weight * box, name="total")
    tf.compat.v1.losses.add_loss(loss)
    opt = tf.compat.v1.train.MomentumOptimizer(0.05, 0.9)
    gv = opt.compute_gradients(loss)
    tf.compat.v1.summary.scalar("loss", loss)
    for g, v in gv:
        tf.compat.v1.summary.histogram("grad/" + v.op.name, g)  # fails on NaN: proves the rewiring
    train = opt.apply_gradients(gv, name="train")  # also collected as TRAIN_OP
    init_op = tf.compat.v1.global_variables_initializer()
    return {"x": x, "labels": labels, "loss": loss, "out": out, "train": train, "init": init_op}


def batch(positive=True):
    rs = np.random.RandomState(2)
    labels = np.float32([1, 0, 1, 0, 0, 1, 0, 0]) if positive else np.zeros(B, np.float32)
    return rs.randn(B, F).astype(np.float32), labels


def _names_exist(meta, key, names):
    col = meta.collection_def[key]
    if col.HasField("node_list"):
        refs = list(col.node_list.value)
    else:
        refs = []
        from tensorflow.core.framework import variable_pb2

        for raw in col.bytes_list.value:
            v = variable_pb2.VariableDef()
            v.ParseFromString(raw)
            refs += [v.variable_name, v.initializer_name, v.snapshot_name]
    return [r for r in refs if r and r.lstrip("^").split(":")[0] not in names]


def test_meta_collections_and_training(tf, tmp_path):
    g = tf.Graph()
    with g.as_default():
        detection(tf)
        tf.compat.v1.train.Saver()
        meta = tf.compat.v1.train.export_meta_graph()
    src = tmp_path / "model.meta"
    src.write_bytes(meta.SerializeToString())
    out = tmp_path / "fixed.meta"
    r = run_cli("rewrite", src, out, "--select", "GF001")
    assert r.returncode == 0, r.stdout + r.stderr
    fixed = graphfix.load(str(out)).meta_graph
    names = {n.name for n in fixed.graph_def.node}
    for key in COLLECTIONS:
        assert fixed.collection_def[key] == meta.collection_def[key], key
        assert not _names_exist(fixed, key, names), key
    assert fixed.saver_def == meta.saver_def

    # Imports with import_meta_graph, trains, and the collected summaries (one
    # histogram per gradient) run on a batch without positives.
    x, labels = batch(positive=False)
    for m, finite in ((meta, False), (fixed, True)):
        g = tf.Graph()
        with g.as_default():
            tf.compat.v1.train.import_meta_graph(m)
            merged = tf.compat.v1.summary.merge_all()
            [train] = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.TRAIN_OP)
            [loss] = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.LOSSES)
            with tf.compat.v1.Session() as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                fd = {"features:0": x, "labels:0": labels}
                if finite:
                    sess.run([train, merged], fd)
                    values = sess.run(tf.compat.v1.trainable_variables())
                    assert all(np.all(np.isfinite(v)) for v in values)
                    assert np.isfinite(sess.run(loss, fd))
                else:
                    with pytest.raises(tf.errors.InvalidArgumentError, match="Nan in summary histogram"):
                        sess.run([train, merged], fd)


def _saved_model(tf, path):
    g = tf.Graph()
    with g.as_default():
        t = detection(tf)
        vocab = os.path.join(os.path.dirname(path), "vocab.txt")
        with open(vocab, "w") as f:
            f.write("background\nbox\n")
        # The asset: a vocabulary table (its file path is collected in ASSET_FILEPATHS).
        table = tf.compat.v1.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
            vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER), -1)
        assert tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS)
        box_id = table.lookup(tf.constant(["box"]), name="box_id")
        sig = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(
            inputs={"features": t["x"], "labels": t["labels"]},
            outputs={"scores": t["out"], "loss": t["loss"], "box_id": box_id})
        with tf.compat.v1.Session() as sess:
            sess.run(t["init"])
            sess.run(tf.compat.v1.tables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(
                sess, [tf.compat.v1.saved_model.tag_constants.SERVING],
                signature_def_map={"serving_default": sig},
                assets_collection=tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS),
                main_op=tf.compat.v1.tables_initializer())
            builder.save()
    os.unlink(vocab)  # from now on only the SavedModel's assets/ copy exists


def _serve(tf, path, x, labels, train_steps=0):
    g = tf.Graph()
    with g.as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(path))
        sig = meta.signature_def["serving_default"]
        fd = {sig.inputs["features"].name: x, sig.inputs["labels"].name: labels}
        for _ in range(train_steps):
            sess.run("train", fd)
        return sess.run({k: v.name for k, v in sig.outputs.items()}, fd)


def test_saved_model(tf, tmp_path):
    src = tmp_path / "src" / "model"
    src.parent.mkdir()
    _saved_model(tf, src)
    out = tmp_path / "out"
    r = cli("rewrite", src, out, "--select", "GF001")
    assert r.returncode == 0, r.stdout + r.stderr

    # variables/ and assets/ copied byte for byte.
    for sub in ("variables", "assets"):
        cmp = filecmp.dircmp(src / sub, out / sub)
        assert cmp.left_list == cmp.right_list and not cmp.diff_files and not cmp.funny_files, sub
        assert all(filecmp.cmp(src / sub / f, out / sub / f, shallow=False) for f in cmp.common_files)
    assert os.listdir(src / "assets") == ["vocab.txt"]

    # Served: the same outputs as the original on normal input (restored
    # variables, asset path resolved into the new directory) ...
    x, labels = batch()
    a, b = _serve(tf, src, x, labels), _serve(tf, out, x, labels)
    assert a.keys() == b.keys() == {"scores", "loss", "box_id"}
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert list(b["box_id"]) == [1]  # the table was initialised from out/assets/vocab.txt
    # ... a finite loss where the original is NaN, and it still trains.
    x, labels = batch(positive=False)
    assert np.isnan(_serve(tf, src, x, labels)["loss"])
    b = _serve(tf, out, x, labels, train_steps=2)
    assert np.isfinite(b["loss"]) and np.all(np.isfinite(b["scores"]))

    # verify reads SavedModel directories (tables initialised from each one's assets/).
    result = graphfix.verify(str(src), str(out), trials=1)
    assert result.ok and result.bit_identical and result.triggered and not result.notes, result.render()

    # Idempotent: rewriting the output again changes nothing, byte for byte.
    again = tmp_path / "again"
    r = run_cli("rewrite", out, again, "--select", "GF001")  # in-process: the first rewrite ran the real CLI
    assert r.returncode == 0, r.stdout + r.stderr
    assert (again / "saved_model.pb").read_bytes() == (out / "saved_model.pb").read_bytes()
    for sub in ("variables", "assets"):
        assert not filecmp.dircmp(out / sub, again / sub).diff_files

    # Rewriting in place (OUT = IN) keeps variables/ and assets/ and is idempotent too.
    r = run_cli("rewrite", again, again, "--select", "GF001")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (again / "saved_model.pb").read_bytes() == (out / "saved_model.pb").read_bytes()
    assert sorted(os.listdir(again)) == sorted(os.listdir(out))
