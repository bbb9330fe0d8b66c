"""The realistic corpus (tests/corpus) is what it claims to be.

For every case: deterministic GraphDef, consistent metadata and feeds, finite
loss/gradients/train steps on the normal feeds, and on the trigger feeds
non-finite loss or gradients for unsafe cases (except the documented
``hidden_on_tf2`` ones) and finite for safe cases.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

try:
    import tests.corpus  # noqa: F401
except ImportError:  # run without the repo root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from tests.corpus import CASES, HAZARD_CODES, Case, build, cases_with_code, safe_cases, unsafe_cases  # noqa: E402
from tests.corpus import shared as cached  # noqa: E402  (built once per process, a copy each call)
from tests.corpus.runner import all_finite, nonfinite_summary, run_case  # noqa: E402

ALL = sorted(CASES)
VARIABLE_OPS = {"VariableV2", "VarHandleOp"}
V2_CONTROL_FLOW = {"If", "StatelessIf", "While", "StatelessWhile", "PartitionedCall", "StatefulPartitionedCall"}


def nodes(case: Case) -> dict:
    return {n.name: n for n in case.graph_def.node}


# --- registry ---------------------------------------------------------------


def test_registry_partitions_cases():
    assert set(unsafe_cases()) | set(safe_cases()) == set(ALL)
    assert not set(unsafe_cases()) & set(safe_cases())
    for name, builder in CASES.items():
        assert builder.case_name == name
        assert all(code in HAZARD_CODES for code in builder.codes + builder.may_also_match)
        assert not set(builder.codes) & set(builder.may_also_match)
        assert builder.codes or not builder.may_also_match, "safe cases must not match anything"


def test_registry_covers_the_catalogue():
    for code in ("GF001", "GF002", "GF003", "GF004", "GF005", "GF006"):
        assert len(cases_with_code(code)) >= 2, code
    assert len(safe_cases()) >= 10
    required = [
        "detection_boolean_mask_momentum",
        "detection_boolean_mask_adam",
        "detection_boolean_mask_sgd",
        "detection_sum_over_size_adagrad",
        "multitask_dynamic_partition_adam",
        "seq2seq_sequence_mask_adam",
        "seq2seq_float_mask_momentum",
        "entropy_relu_attention_where_log_sgd",
        "where_sqrt_contrastive_momentum",
        "where_reciprocal_repulsion_sgd",
        "embedding_triplet_norm_momentum",
        "embedding_cosine_divide_by_norm_adam",
        "gan_discriminator_log_sigmoid_adam",
        "softmax_ce_manual_log_softmax_adam",
        "masked_pointer_nll_adam",
        "safe_detection_cond_guard_momentum",
        "safe_seq2seq_divide_no_nan_adam",
        "safe_entropy_double_where_sgd",
        "safe_seq2seq_maximum_count_sgd",
    ]
    assert not [n for n in required if n not in CASES]


def test_both_variable_kinds_and_forward_only_cases_exist():
    kinds = set()
    for name in ALL:
        case = cached(name)
        by_name = nodes(case)
        kinds |= {by_name[v].op for v in case.variables}
    assert kinds == VARIABLE_OPS
    assert any(cached(n).train_op is None for n in unsafe_cases())
    assert any(cached(n).train_op is None for n in safe_cases())


# --- per case: structure ----------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_build_is_deterministic(name):
    first, second = cached(name), build(name)
    assert first.graph_def.SerializeToString(deterministic=True) == second.graph_def.SerializeToString(
        deterministic=True
    )
    assert first.meta_graph_def.SerializeToString(deterministic=True) == second.meta_graph_def.SerializeToString(
        deterministic=True
    )
    assert first.feeds_normal.keys() == second.feeds_normal.keys()
    for key in first.feeds_normal:
        np.testing.assert_array_equal(first.feeds_normal[key], second.feeds_normal[key])
        np.testing.assert_array_equal(first.feeds_trigger[key], second.feeds_trigger[key])


@pytest.mark.parametrize("name", ALL)
def test_case_metadata_is_consistent(name):
    case = cached(name)
    by_name = nodes(case)
    assert case.name == name
    assert case.codes == CASES[name].codes
    assert case.may_also_match == CASES[name].may_also_match
    assert len(set(case.codes)) == len(case.codes)
    assert case.description
    assert not case.hidden_on_tf2 or case.codes, "only unsafe cases can be hidden"

    # named nodes exist
    loss_node, _, loss_index = case.loss.partition(":")
    assert loss_index == "0"
    assert loss_node in by_name
    assert case.init_op == "init" and by_name["init"].op == "NoOp"
    if case.train_op is not None:
        assert case.train_op == "train"
        assert case.train_op in by_name
    else:
        assert not any(n.op.startswith(("Apply", "ResourceApply")) for n in case.graph_def.node)

    # variables: sorted trainable variable nodes, same as the meta graph's collection
    assert list(case.variables) == sorted(case.variables)
    assert case.variables
    assert all(by_name[v].op in VARIABLE_OPS for v in case.variables)
    with tf.Graph().as_default() as g:
        tf.compat.v1.train.import_meta_graph(case.meta_graph_def)
        meta_vars = sorted(v.op.name for v in g.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES))
    assert tuple(meta_vars) == case.variables
    assert {n.name for n in case.meta_graph_def.graph_def.node} == set(by_name)

    # v1 control flow only
    assert not {n.op for n in case.graph_def.node} & V2_CONTROL_FLOW

    # feeds: exactly the placeholders, right dtype and shape
    placeholders = {n.name: n for n in case.graph_def.node if n.op == "Placeholder"}
    assert case.feeds_normal.keys() <= case.feeds_trigger.keys()
    assert {k.rsplit(":", 1)[0] for k in case.feeds_normal} == set(placeholders)
    # A trigger may also override a tensor the graph computes — a variable's
    # read value (a learned scale driven to 0), a layer output driven to an
    # extreme — to show a state training can reach.
    for key in case.feeds_trigger.keys() - case.feeds_normal.keys():
        assert key.rsplit(":", 1)[0] in by_name and by_name[key.rsplit(":", 1)[0]].op != "Placeholder", key
    for key in case.feeds_normal:
        node = placeholders[key.rsplit(":", 1)[0]]
        assert key.endswith(":0")
        want_dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype
        want_shape = tuple(d.size for d in node.attr["shape"].shape.dim)
        for feeds in (case.feeds_normal, case.feeds_trigger):
            value = feeds[key]
            assert isinstance(value, np.ndarray), key
            assert value.dtype == want_dtype, key
            assert value.shape == want_shape, key
    if case.codes:
        assert case.feeds_trigger.keys() != case.feeds_normal.keys() or any(
            not np.array_equal(case.feeds_normal[k], case.feeds_trigger[k]) for k in case.feeds_normal
        ), "unsafe case needs a trigger feed that differs from the normal one"


def test_cond_guard_uses_v1_switch_merge():
    ops = {n.op for n in cached("safe_detection_cond_guard_momentum").graph_def.node}
    assert {"Switch", "Merge"} <= ops
    assert not ops & {"If", "StatelessIf"}


# --- per case: execution ----------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_normal_feeds_are_finite(name):
    case = cached(name)
    result = run_case(case, feeds="normal", steps=1)
    assert all_finite(result), nonfinite_summary(result)
    assert any(np.any(g != 0) for g in result["grads"].values()), "normal feed gives all-zero gradients"
    if case.train_op is not None:
        assert result["steps"] == 1
        assert np.isfinite(result["loss_after"])
        for var, value in result["variables"].items():
            assert np.all(np.isfinite(value)), var
        assert any(
            not np.array_equal(result["variables"][v], result["init_variables"][v]) for v in case.variables
        ), "train op changed no variable"


@pytest.mark.parametrize("name", ALL)
def test_trigger_feeds(name):
    case = cached(name)
    result = run_case(case, feeds="trigger")
    if case.codes and not case.hidden_on_tf2:
        assert not all_finite(result), f"{name}: hazard {case.codes} did not fire on the trigger feeds"
    else:
        assert all_finite(result), f"{name}: {nonfinite_summary(result)}"


@pytest.mark.parametrize(
    "name,lr",
    [
        ("detection_boolean_mask_sgd", 0.1),  # resource variables
        ("metric_count_nonzero_sgd", 0.1),  # ref variables
        ("seq2seq_reciprocal_count_sgd", 0.5),  # IndexedSlices gradient of an embedding
    ],
)
def test_runner_gradients_match_the_graphs_own_sgd_step(name, lr):
    case = cached(name)
    result = run_case(case, feeds="normal", steps=1)
    for var in case.variables:
        expected = result["init_variables"][var] - lr * result["grads"][var]
        np.testing.assert_allclose(result["variables"][var], expected, rtol=1e-5, atol=1e-6, err_msg=var)


def test_runner_accepts_explicit_graph_def_and_feed_dict():
    case = cached("safe_seq2seq_maximum_count_sgd")
    gd = tf.compat.v1.GraphDef()
    gd.CopyFrom(case.graph_def)
    a = run_case(case, graph_def=gd, feeds=dict(case.feeds_trigger))
    b = run_case(case, feeds="trigger")
    assert a["loss"] == b["loss"] == 0.0
    for var in case.variables:
        np.testing.assert_array_equal(a["grads"][var], b["grads"][var])
