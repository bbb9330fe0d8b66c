"""``graphfix verify`` through the CLI (issue #5): the shipped detection example
and its rewrite pass; graphs that are not a faithful repair are rejected.

Two tests run ``python cli.py`` as a subprocess; the others call ``cli.main``
in-process (same code path, without paying TensorFlow's import each time)."""
import json
import os
import types

import numpy as np
import pytest

import cli as cli_module
import graphfix
from tests.helpers import EXAMPLES, cli, run_cli, write


@pytest.fixture
def run(capsys):
    """``cli.main(args)`` in-process -> object with returncode, stdout, stderr."""
    def _run(*args):
        rc = cli_module.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return types.SimpleNamespace(returncode=rc, stdout=out, stderr=err)
    return _run

DETECTION = os.path.join(EXAMPLES, "detection.pb")


@pytest.fixture(scope="module")
def fixed_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "detection.fixed.pb"
    r = run_cli("rewrite", DETECTION, out, "--select", "GF001")
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_verify_accepts_the_rewrite(fixed_path):
    r = cli("verify", DETECTION, fixed_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verify: OK" in r.stdout
    assert "3/3 agree" in r.stdout and "bit-identical" in r.stdout
    assert "labels:0=zeros: original non-finite" in r.stdout


def test_verify_json(fixed_path, run):
    r = run("verify", DETECTION, fixed_path, "--format", "json", "--trials", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["ok"] is True and rep["command"] == "verify"
    assert rep["losses"] == ["loss/total:0"] and rep["train_ops"] == ["train"]
    assert rep["normal"]["bit_identical"] is True and rep["normal"]["max_abs"] == 0.0
    assert len(rep["normal"]["trials"]) == 2
    # Loss, 5 gradients (4 head variables + box_weight), the 5 gradients the
    # Momentum ops apply, and 10 variables (5 + 5 momentum slots) after a step.
    assert rep["compared"] == {"loss": 1, "grads": 5, "applied": 5, "variables": 10}
    assert rep["trigger"]["triggered"] >= 1 and rep["trigger"]["ok"] is True
    trig = {t["feed"]: t for t in rep["trigger"]["feeds"]}
    assert trig["labels:0=zeros"]["original_triggers"] and trig["labels:0=zeros"]["fixed_finite"]
    assert "GF001 loss/Mean_1" in rep["findings"]
    assert not [f for f in rep["remaining_in_fixed"] if f.startswith("GF001")]


def test_verify_rejects_the_unfixed_graph(tmp_path):
    """The original passed off as its own repair: agrees on normal feeds, NaN on the trigger."""
    r = run_cli("verify", DETECTION, DETECTION, "--format", "json", "--trials", "1")
    assert r.returncode == 1, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["ok"] is False and rep["normal"]["ok"] is True and rep["trigger"]["ok"] is False
    bad = [t for t in rep["trigger"]["feeds"] if not t["fixed_finite"]]
    assert any("loss/total:0" in " ".join(t["fixed"]) for t in bad)


def test_verify_rejects_a_wrong_gradient(tmp_path, fixed_path, tf, run):
    """A "fix" whose w1 update reads a gradient off by 0.1%: finite everywhere,
    but not the original's training — verify must say so (exit 1)."""
    gd = graphfix.load(str(fixed_path)).graph_def
    apply = next(n for n in gd.node if n.op.endswith("ApplyMomentum") and "w1" in n.name)
    grad = apply.input[3]
    scale = gd.node.add()
    scale.name = "broken/scale"
    scale.op = "Const"
    scale.attr["dtype"].type = tf.float32.as_datatype_enum
    scale.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(1.001)))
    mul = gd.node.add()
    mul.name = "broken/mul"
    mul.op = "Mul"
    mul.attr["T"].type = tf.float32.as_datatype_enum
    mul.input.extend([grad, "broken/scale"])
    apply.input[3] = "broken/mul"
    broken = write(tmp_path / "broken.pb", gd.SerializeToString())
    r = run("verify", DETECTION, broken, "--trials", "1")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "MISMATCH" in r.stdout and "verify: FAILED" in r.stdout
    assert "applied:train/update_head/w1/" in r.stdout


def test_verify_feeds_file(tmp_path, fixed_path, run):
    rs = np.random.RandomState(3)
    labels = np.zeros(16, np.float32)
    labels[[1, 5]] = 1
    npz = tmp_path / "feeds.npz"
    np.savez(npz, **{"features:0": rs.randn(16, 8).astype(np.float32), "labels": labels,
                     "boxes:0": rs.randn(16, 4).astype(np.float32)})
    r = run("verify", DETECTION, fixed_path, "--feeds", npz, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert [t["feed"] for t in rep["normal"]["trials"]] == ["--feeds"]
    assert rep["normal"]["bit_identical"] and rep["trigger"]["triggered"] >= 1

    # A "normal" feed on which the original is already NaN is refused (exit 2, one line).
    np.savez(npz, labels=np.zeros(16, np.float32))
    r = run("verify", DETECTION, fixed_path, "--feeds", npz)
    assert r.returncode == 2 and r.stderr.startswith("graphfix: error: ") and len(r.stderr.splitlines()) == 1
    assert "not normal feeds" in r.stderr

    np.savez(npz, nope=np.zeros(3, np.float32))
    r = run("verify", DETECTION, fixed_path, "--feeds", npz)
    assert r.returncode == 2 and "'nope' is not a placeholder" in r.stderr


def test_verify_bad_loss_is_an_error(fixed_path, run):
    r = run("verify", DETECTION, fixed_path, "--loss", "no/such:0")
    assert r.returncode == 2 and r.stderr.startswith("graphfix: error: ")


def _graph_with_late_slots_and_a_saver(tf):
    """A training graph as users' checkpoints hold it: the user's ``init`` op is
    made before the optimizer (so it misses Adam's slots and beta powers), a
    Saver adds ``save/Assign`` ops that restore from checkpoint files, and the
    keep probability is fed as a number (a placeholder of unknown rank)."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        keep = tf.compat.v1.placeholder(tf.float32, name="keep_prob")
        w = tf.compat.v1.get_variable("w", [3, 2], initializer=tf.constant_initializer(0.5), use_resource=False)
        h = tf.matmul(x, w) / keep
        loss = tf.reduce_mean(tf.square(h), name="loss")
        tf.compat.v1.global_variables_initializer()  # named "init", before the slots exist
        tf.compat.v1.train.AdamOptimizer(0.1).minimize(loss, name="train")
        tf.compat.v1.train.Saver()
    return g


def test_verify_initialises_every_variable_and_never_restores_a_checkpoint(tmp_path, tf, run):
    path = tmp_path / "model.pb"
    write(path, _graph_with_late_slots_and_a_saver(tf).as_graph_def().SerializeToString())
    r = run("verify", path, path, "--loss", "loss:0", "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["normal"]["bit_identical"]
    assert out["variables"] == 5  # w, its two Adam slots, beta1_power, beta2_power


def test_old_graphdef_placeholder_without_shape_is_not_a_scalar(tf):
    """Up to GraphDef version 21 an empty Placeholder shape attr means any
    shape; the written ``_output_shapes`` gives the real one.  From version
    22 on, an empty shape is a scalar."""
    from graphfix.verification.feeds import draw, placeholders

    gd = tf.compat.v1.GraphDef()
    gd.versions.producer = 21
    n = gd.node.add(name="x", op="Placeholder")
    n.attr["dtype"].type = 1
    n.attr["shape"].shape.SetInParent()
    n.attr["_output_shapes"].list.shape.add().dim.add(size=-1)
    n.attr["_output_shapes"].list.shape[0].dim.add(size=50)
    u = gd.node.add(name="keep_prob", op="Placeholder")
    u.attr["dtype"].type = 1
    old = {p.name: p for p in placeholders(gd)}
    assert old["x:0"].shape == [-1, 50]
    assert old["keep_prob:0"].shape is None and draw(old["keep_prob:0"], 0, "normal").shape == ()
    gd.versions.producer = 27
    assert {p.name: p.shape for p in placeholders(gd)}["x:0"] == []


def test_verify_starts_a_variable_without_initialiser_at_zeros(tmp_path, tf, run):
    """A graph built twice in one process can hold a slot variable whose
    initial assign is gone: verify starts it at zeros (as a slot starts) and
    says so, instead of failing on an uninitialised value."""
    gd = _graph_with_late_slots_and_a_saver(tf).as_graph_def()
    kept = [n for n in gd.node if n.name != "w/Adam_1/Assign"]
    del gd.node[:]
    gd.node.extend(kept)
    path = tmp_path / "model.pb"
    write(path, gd.SerializeToString())
    r = run("verify", path, path, "--loss", "loss:0", "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and any("w/Adam_1 has no initialiser" in n for n in out["notes"]), out["notes"]


def test_agreement_is_relative_to_the_tensors_magnitude():
    """A gradient element that cancels to 1e-3 in a tensor whose entries reach
    100 carries the rounding of those 100s: 1e-5 off there is agreement
    within rtol 1e-5; 1 off in an entry of 2 is not."""
    from graphfix.verification.compare import compare
    from graphfix.verification.runner import Execution

    def ex(g):
        return Execution(loss={"l": np.float32(1.0)}, grads={"l / w": np.array(g, np.float32)}, applied={},
                         variables={}, steps=0)

    a = ex([100.0, 1e-3])
    near = compare(a, ex([100.0, 1e-3 + 1e-5]), rtol=1e-5, atol=1e-6)
    assert not near.mismatched and not near.bit_identical and near.max_rel > 1e-3
    assert compare(a, ex([100.0, 2.0]), rtol=1e-5, atol=1e-6).mismatched == ["grads:l / w"]
    assert compare(a, ex([100.0, float("nan")]), rtol=1e-5, atol=1e-6).mismatched == ["grads:l / w"]


def test_a_scalar_float_hyperparameter_is_not_a_trigger():
    """A scalar float placeholder (a keep probability, a learning rate) is fed
    a positive number for normal feeds and left alone by trigger feeds: a
    keep probability of 0 is outside its domain, not a batch."""
    from graphfix.verification.feeds import Placeholder, trigger_candidates

    x, keep = Placeholder("x:0", 1, [-1, 3]), Placeholder("keep_prob:0", 1, [])
    base = {"x:0": np.ones((4, 3), np.float32), "keep_prob:0": np.float32(0.5)}
    cands = trigger_candidates(base, [x, keep])
    assert cands and all(c.feed["keep_prob:0"] == np.float32(0.5) for c in cands)
    assert any(np.all(c.feed["x:0"] == 0) for c in cands)


def test_a_loss_fed_by_an_input_queue_is_an_error_not_a_hang(tmp_path, tf, run):
    """A loss whose batch comes from a FIFOQueue nothing fills here: verify
    says so in one line (exit 2) instead of blocking in the dequeue."""
    g = tf.Graph()
    with g.as_default():
        q = tf.queue.FIFOQueue(8, [tf.float32], shapes=[[3]], name="batch_queue")
        x = q.dequeue_many(4, name="batch")
        w = tf.compat.v1.get_variable("w", [3, 1], use_resource=False)
        loss = tf.reduce_mean(tf.matmul(x, w), name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
        tf.compat.v1.global_variables_initializer()
    path = tmp_path / "queue.pb"
    write(path, g.as_graph_def().SerializeToString())
    r = run("verify", path, path)
    assert r.returncode == 2 and "input queue (QueueDequeueManyV2 'batch')" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
