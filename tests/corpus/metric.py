"""Metric-shaped loss terms trained on directly.

* soft recall = sum(q * positive) / sum(positive)          (GF002, no positives)
* weighted error / count_nonzero(weights)                   (GF002, all weights 0)
* MAPE = where(y != 0, |pred - y| / |y|, 0)                 (GF003, a zero target)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, placeholder, register

BATCH = 8
FEAT = 6
LABELS = 4


@register("metric_soft_recall_adam", ("GF002",))
def metric_soft_recall_adam():
    x = placeholder("features", [BATCH, FEAT])
    positive = placeholder("positive", [BATCH, LABELS], tf.bool)
    h = dense(x, 12, "tagger/hidden", activation=tf.nn.relu)
    logits = dense(h, LABELS, "tagger/logits")
    with tf.name_scope("loss"):
        y = tf.cast(positive, tf.float32)
        bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits), name="bce")
        q = tf.sigmoid(logits)
        recall = tf.math.truediv(tf.reduce_sum(q * y), tf.reduce_sum(y), name="soft_recall")
        total = tf.add(bce, 1.0 - recall, name="total")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(total, name="train")

    rs = np.random.RandomState(61)
    normal = {
        "inputs/features:0": rs.randn(BATCH, FEAT).astype(np.float32),
        "inputs/positive:0": rs.rand(BATCH, LABELS) < 0.3,
    }
    assert normal["inputs/positive:0"].any()
    trigger = dict(normal)
    trigger["inputs/positive:0"] = np.zeros((BATCH, LABELS), dtype=bool)
    desc = """Multi-label tagger: BCE with logits (safe) plus a soft-recall term
    1 - sum(sigmoid(z) * y) / sum(y), y = cast(bool labels); Adam, resource
    variables.  Trigger: a batch with no positive label -> 0/0, NaN loss and
    gradients."""
    return Built(total, train, normal, trigger, desc)


@register("metric_count_nonzero_sgd", ("GF002",))
def metric_count_nonzero_sgd():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("targets", [BATCH])
    w = placeholder("sample_weights", [BATCH])
    pred = tf.squeeze(dense(x, 1, "regressor", use_resource=False), axis=1)
    with tf.name_scope("loss"):
        weighted = tf.reduce_sum(w * tf.abs(pred - y), name="weighted_abs_err")
        n = tf.cast(tf.math.count_nonzero(w), tf.float32, name="num_weighted")
        total = tf.math.truediv(weighted, n, name="total")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(total, name="train")

    rs = np.random.RandomState(62)
    normal = {
        "inputs/features:0": rs.randn(BATCH, FEAT).astype(np.float32),
        "inputs/targets:0": rs.randn(BATCH).astype(np.float32),
        "inputs/sample_weights:0": np.array([1, 0, 2, 1, 0, 1, 0.5, 1], dtype=np.float32),
    }
    trigger = dict(normal)
    trigger["inputs/sample_weights:0"] = np.zeros(BATCH, dtype=np.float32)
    desc = """Linear regressor, weighted MAE normalised by the number of
    non-zero sample weights: sum(w * |err|) / cast(count_nonzero(w));
    GradientDescent, ref variables.  Trigger: all sample weights 0 -> 0/0,
    NaN loss and gradients."""
    return Built(total, train, normal, trigger, desc)


@register("metric_mape_where_realdiv_momentum", ("GF003",))
def metric_mape_where_realdiv_momentum():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("targets", [BATCH])
    h = dense(x, 8, "forecaster/hidden", activation=tf.nn.relu)
    pred = tf.squeeze(dense(h, 1, "forecaster/out"), axis=1)
    with tf.name_scope("loss"):
        rel = tf.where(tf.not_equal(y, 0.0), tf.abs((pred - y) / y), tf.zeros_like(y), name="abs_pct_err")
        total = tf.reduce_mean(rel, name="total")
    train = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9).minimize(total, name="train")

    rs = np.random.RandomState(63)
    normal = {
        "inputs/features:0": rs.randn(BATCH, FEAT).astype(np.float32),
        "inputs/targets:0": rs.uniform(1.0, 3.0, size=BATCH).astype(np.float32),
    }
    trigger = dict(normal)
    yt = normal["inputs/targets:0"].copy()
    yt[[2, 5]] = 0.0  # days with zero sales
    trigger["inputs/targets:0"] = yt
    desc = """Forecaster trained on MAPE with the usual zero-target guard:
    mean(tf.where(y != 0, |(pred - y) / y|, 0)); Momentum, resource variables.
    Trigger: some targets are exactly 0 -> forward finite, gradient NaN
    (RealDiv gradient 0 / 0 in the untaken branch)."""
    return Built(total, train, normal, trigger, desc)
