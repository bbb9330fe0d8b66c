"""GF005: cross-entropies written by hand on top of softmax / sigmoid.

``-sum(y * log(softmax(z)))`` underflows as soon as a logit gap exceeds ~104
in float32: the probability is exactly 0, log gives -inf, and
``0 * -inf`` / the log gradient turn loss and gradients into inf/NaN.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, placeholder, register

BATCH = 8
FEAT = 10
CLASSES = 5


def classifier(x, use_resource, n_out=CLASSES):
    h = dense(x, 16, "classifier/hidden", activation=tf.nn.relu, use_resource=use_resource)
    return dense(h, n_out, "classifier/logits", use_resource=use_resource)


def classifier_feeds(seed, onehot=True, scale=500.0):
    rs = np.random.RandomState(seed)
    x = rs.randn(BATCH, FEAT).astype(np.float32)
    labels = (np.arange(BATCH) % CLASSES).astype(np.int32)
    normal = {"inputs/features:0": x}
    if onehot:
        normal["inputs/labels_onehot:0"] = np.eye(CLASSES, dtype=np.float32)[labels]
    else:
        normal["inputs/labels:0"] = labels
    trigger = dict(normal)
    # un-normalised features (raw pixel values): logit gaps of hundreds
    trigger["inputs/features:0"] = (scale * x).astype(np.float32)
    return normal, trigger


@register("softmax_ce_manual_log_softmax_adam", ("GF005",), may_also_match=("GF006",))
def softmax_ce_manual_log_softmax_adam():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("labels_onehot", [BATCH, CLASSES])
    logits = classifier(x, True)
    with tf.name_scope("loss"):
        probs = tf.nn.softmax(logits, name="probs")
        xent = -tf.reduce_sum(y * tf.math.log(probs), axis=1)
        total = tf.reduce_mean(xent, name="total")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(total, name="train")
    normal, trigger = classifier_feeds(91)
    desc = """MLP classifier with the textbook cross-entropy
    mean(-reduce_sum(y * log(softmax(z)), 1)), one-hot labels; Adam, resource
    variables.  Trigger: features scaled x500, logit gaps > 100, some softmax
    probabilities exactly 0 -> 0 * -inf: NaN loss and gradients."""
    return Built(total, train, normal, trigger, desc)


@register("softmax_ce_true_class_prob_sgd", ("GF011",))
def softmax_ce_true_class_prob_sgd():
    x = placeholder("features", [BATCH, FEAT])
    labels = placeholder("labels", [BATCH], tf.int32)
    logits = classifier(x, False)
    with tf.name_scope("loss"):
        probs = tf.nn.softmax(logits)
        p_true = tf.reduce_sum(tf.one_hot(labels, CLASSES) * probs, axis=1, name="p_true")
        total = tf.negative(tf.reduce_mean(tf.math.log(p_true)), name="total")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(total, name="train")
    normal, trigger = classifier_feeds(92, onehot=False)
    desc = """MLP classifier, NLL of the true class taken from the softmax:
    -mean(log(reduce_sum(one_hot(y) * softmax(z), 1))); GradientDescent, ref
    variables.  Trigger: features scaled x500, the true class of some rows
    has probability exactly 0 -> loss inf, gradients NaN."""
    return Built(total, train, normal, trigger, desc)


@register("binary_ce_manual_sigmoid_rmsprop", ("GF005",), may_also_match=("GF006",))
def binary_ce_manual_sigmoid_rmsprop():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("labels", [BATCH])
    logit = tf.squeeze(classifier(x, True, n_out=1), axis=1)
    with tf.name_scope("loss"):
        p = tf.sigmoid(logit, name="prob")
        ll = y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p)
        total = tf.negative(tf.reduce_mean(ll), name="total")
    train = tf.compat.v1.train.RMSPropOptimizer(1e-3).minimize(total, name="train")
    rs = np.random.RandomState(93)
    xs = rs.randn(BATCH, FEAT).astype(np.float32)
    normal = {"inputs/features:0": xs, "inputs/labels:0": (np.arange(BATCH) % 2).astype(np.float32)}
    trigger = dict(normal)
    trigger["inputs/features:0"] = (500.0 * xs).astype(np.float32)
    desc = """Binary classifier with hand-written BCE
    -mean(y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z))); RMSProp,
    resource variables.  Trigger: features scaled x500, |logit| of hundreds
    -> sigmoid exactly 0 or 1, log(0): inf/NaN loss and NaN gradients."""
    return Built(total, train, normal, trigger, desc)


def _mixture_feeds(seed, onehot):
    normal, trigger = classifier_feeds(seed, onehot=onehot)
    # every row mixes itself and the next row (an alignment over two source positions)
    weights = (0.5 * (np.eye(BATCH) + np.roll(np.eye(BATCH), 1, axis=1))).astype(np.float32)
    return dict(normal, **{"inputs/mix:0": weights}), dict(trigger, **{"inputs/mix:0": weights})


@register("softmax_ce_mixture_matmul_log_adam", ("GF005",), may_also_match=("GF006",))
def softmax_ce_mixture_matmul_log_adam():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("labels_onehot", [BATCH, CLASSES])
    mix = placeholder("mix", [BATCH, BATCH])
    logits = classifier(x, True)
    with tf.name_scope("loss"):
        probs = tf.matmul(mix, tf.nn.softmax(logits), name="mixture")
        total = tf.negative(tf.reduce_mean(tf.reduce_sum(y * tf.math.log(probs), axis=1)), name="total")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(total, name="train")
    normal, trigger = _mixture_feeds(94, True)
    desc = """A mixture of softmaxes (fed non-negative mixing weights, as an
    alignment averages word distributions over source positions):
    -mean(sum(y * log(mix @ softmax(z)), 1)); Adam, resource variables.
    Trigger: features scaled x500, a class no row gives any probability has
    mixture probability exactly 0 -> log(0): inf/NaN loss and gradients."""
    return Built(total, train, normal, trigger, desc)


@register("softmax_ce_mixture_batch_matmul_log_sgd", ("GF005",))
def softmax_ce_mixture_batch_matmul_log_sgd():
    x = placeholder("features", [BATCH, FEAT])
    labels = placeholder("labels", [BATCH], tf.int32)
    mix = placeholder("mix", [BATCH, BATCH])
    logits = classifier(x, False)
    with tf.name_scope("loss"):
        probs = tf.squeeze(tf.matmul(tf.expand_dims(mix, 0), tf.expand_dims(tf.nn.softmax(logits), 0)), 0)
        p_true = tf.reduce_sum(tf.one_hot(labels, CLASSES) * probs, axis=1, name="p_true")
        total = tf.negative(tf.reduce_mean(tf.math.log(p_true)), name="total")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(total, name="train")
    normal, trigger = _mixture_feeds(95, False)
    desc = """The true class's probability under a batched mixture of
    softmaxes, -mean(log(sum(one_hot(y) * (W @ softmax(z)), 1))) with a
    BatchMatMul; GradientDescent, ref variables.  Trigger: features scaled
    x500, the true class of some rows has mixture probability exactly 0."""
    return Built(total, train, normal, trigger, desc)
