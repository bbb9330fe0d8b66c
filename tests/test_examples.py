"""End to end on the shipped example: rewrite a Momentum-trained detection head
and run original and fixed graphs in TensorFlow (issue #3's acceptance test)."""
import os

import numpy as np
import pytest
from google.protobuf import text_format

import graphfix
from graphfix.verification.compare import compare
from graphfix.verification.runner import execute
from tests.helpers import EXAMPLES, cli, run_cli, write

DETECTION = os.path.join(EXAMPLES, "detection.pb")
LOSS = ["loss/total:0"]


def feeds(positive: bool):
    rs = np.random.RandomState(7)
    labels = (rs.rand(16) > 0.6).astype(np.float32) if positive else np.zeros(16, np.float32)
    if positive:
        labels[3] = 1.0
    return {"features:0": rs.randn(16, 8).astype(np.float32), "labels:0": labels,
            "boxes:0": rs.randn(16, 4).astype(np.float32)}


def _load_graph_def(path):
    return graphfix.load(str(path)).graph_def


@pytest.fixture(scope="module")
def original():
    return _load_graph_def(DETECTION)


@pytest.fixture(scope="module")
def original_runs(tf, original):
    """The original graph's runs, the same for every parametrisation: computed once."""
    return {"normal": execute(original, feeds(True), LOSS, "train", steps=3),
            "trigger": execute(original, feeds(False), LOSS, "train", steps=1)}


@pytest.mark.parametrize("suffix", [".pb", ".pbtxt", ".meta"])
@pytest.mark.parametrize("guard", ["cond", "where"])
def test_fixed_detection_head_trains(tmp_path, tf, original, original_runs, suffix, guard, default_rules):
    src = tmp_path / f"model{suffix}"
    if suffix == ".pb":
        src = DETECTION
    elif suffix == ".pbtxt":
        write(src, text_format.MessageToString(original).encode())
    else:
        meta = tf.compat.v1.MetaGraphDef()
        meta.graph_def.CopyFrom(original)
        meta.collection_def["train_op"].node_list.value.append("train")
        write(src, meta.SerializeToString())
    out = tmp_path / f"fixed{suffix}"
    # one combination through a real `python cli.py`, the others through cli.main in this process
    run = cli if (suffix, guard) == (".pb", "cond") else run_cli
    r = run("rewrite", "--select", "ALL", src, out, "--guard", guard)  # GF001 is opt-in, as the README says
    assert r.returncode == 0, r.stderr
    fixed = _load_graph_def(out)

    # Normal batch: loss, gradients, the gradient the optimizer applies and the
    # variables after three Momentum steps are bit-for-bit the original's.
    a = original_runs["normal"]
    b = execute(fixed, feeds(True), LOSS, "train", steps=3)
    cmp = compare(a, b)
    assert cmp.bit_identical, cmp
    assert a.finite()

    # Batch without positives: the original is NaN and poisons the variables.
    a = original_runs["trigger"]
    assert np.isnan(a.loss["loss/total:0"]) and not a.finite()
    b = execute(fixed, feeds(False), LOSS, "train", steps=1)
    assert b.finite(), b
    # ...and the guarded term contributes exactly 0: the loss is the classification term alone.
    assert b.loss["loss/total:0"] > 0

    if suffix == ".meta":
        meta = graphfix.load(str(out)).meta_graph
        assert list(meta.collection_def["train_op"].node_list.value) == ["train"]


def test_default_rules_leave_the_example_to_select_all(tmp_path, default_rules):
    """GF001 is opt-in: without --select the example is reported clean, written
    back byte-identical, and the report says that --select ALL finds more."""
    out = tmp_path / "same.pb"
    r = run_cli("rewrite", DETECTION, out)
    assert r.returncode == 0, r.stderr
    assert "1 more finding from opt-in rules (GF001 x1): --select ALL includes them." in r.stdout
    with open(DETECTION, "rb") as a, open(out, "rb") as b:
        assert a.read() == b.read()


def test_verify_triggers_the_hazards_of_the_rules_it_is_given(tmp_path, default_rules):
    """verify looks for trigger feeds from the findings of the rules --select
    names, as for the rewrite it verifies: with ALL it makes the original's
    empty mean NaN and the fixed graph stays finite; with the default set
    (GF001 is opt-in) it has no hazard to trigger."""
    out = tmp_path / "fixed.pb"
    assert run_cli("rewrite", "--select", "ALL", DETECTION, out).returncode == 0
    r = run_cli("verify", DETECTION, out, "--select", "ALL")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "labels:0=zeros: original non-finite" in r.stdout and "findings in the original: 1;" in r.stdout
    r = run_cli("verify", DETECTION, out)
    assert r.returncode == 0 and "trigger feeds: none tried (no findings in the original graph)" in r.stdout
