"""Safe twins: the same models written the way that cannot produce NaN.

graphfix must not flag or change any of these (``codes == ()``); they stay
finite on their trigger feeds (the inputs that break the unsafe versions).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, detection, embedding, entropy, gan, placeholder, register, scope_vars, seq2seq, softmax_ce

# --- tf.compat.v1.losses with weights ---------------------------------------

BATCH = 8
FEAT = 10


@register("safe_losses_mse_weighted_adam")
def safe_losses_mse_weighted_adam():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("targets", [BATCH, 1])
    w = placeholder("weights", [BATCH, 1])
    h = dense(x, 16, "regressor/hidden", activation=tf.nn.relu)
    pred = dense(h, 1, "regressor/out")
    mse = tf.compat.v1.losses.mean_squared_error(y, pred, weights=w)
    loss = tf.identity(mse, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    rs = np.random.RandomState(111)
    normal = {
        "inputs/features:0": rs.randn(BATCH, FEAT).astype(np.float32),
        "inputs/targets:0": rs.randn(BATCH, 1).astype(np.float32),
        "inputs/weights:0": np.array([[1], [0], [1], [2], [1], [0], [1], [1]], dtype=np.float32),
    }
    trigger = dict(normal)
    trigger["inputs/weights:0"] = np.zeros((BATCH, 1), dtype=np.float32)
    desc = """tf.compat.v1.losses.mean_squared_error with per-example weights
    (SUM_BY_NONZERO_WEIGHTS: div_no_nan inside); Adam, resource variables.
    Trigger: all weights 0 -> loss 0, gradients 0."""
    return Built(loss, train, normal, trigger, desc)


@register("safe_losses_sigmoid_ce_weighted_sgd")
def safe_losses_sigmoid_ce_weighted_sgd():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("labels", [BATCH, 3])
    w = placeholder("weights", [BATCH, 1])
    h = dense(x, 16, "tagger/hidden", activation=tf.nn.relu, use_resource=False)
    logits = dense(h, 3, "tagger/logits", use_resource=False)
    bce = tf.compat.v1.losses.sigmoid_cross_entropy(y, logits, weights=w, label_smoothing=0.05)
    loss = tf.identity(bce, name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    rs = np.random.RandomState(112)
    xs = rs.randn(BATCH, FEAT).astype(np.float32)
    normal = {
        "inputs/features:0": xs,
        "inputs/labels:0": (rs.rand(BATCH, 3) < 0.4).astype(np.float32),
        "inputs/weights:0": np.ones((BATCH, 1), dtype=np.float32),
    }
    trigger = dict(normal)
    trigger["inputs/features:0"] = 500.0 * xs
    trigger["inputs/weights:0"] = np.zeros((BATCH, 1), dtype=np.float32)
    desc = """tf.compat.v1.losses.sigmoid_cross_entropy with weights and label
    smoothing; GradientDescent, ref variables.  Trigger: saturated logits
    (features x500) and all-zero weights -> finite."""
    return Built(loss, train, normal, trigger, desc)


@register("safe_losses_softmax_ce_weighted_momentum")
def safe_losses_softmax_ce_weighted_momentum():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("labels_onehot", [BATCH, 5])
    w = placeholder("weights", [BATCH])
    logits = softmax_ce.classifier(x, True)
    xent = tf.compat.v1.losses.softmax_cross_entropy(y, logits, weights=w, label_smoothing=0.1)
    loss = tf.identity(xent, name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9).minimize(loss, name="train")
    normal, trigger = softmax_ce.classifier_feeds(113)
    normal["inputs/weights:0"] = np.array([1, 1, 0.5, 1, 0, 1, 1, 2], dtype=np.float32)
    trigger["inputs/weights:0"] = np.zeros(BATCH, dtype=np.float32)
    desc = """tf.compat.v1.losses.softmax_cross_entropy with weights and label
    smoothing; Momentum, resource variables.  Trigger: saturated logits
    (features x500) and all-zero weights -> finite."""
    return Built(loss, train, normal, trigger, desc)


# --- safe formulations of the GF005 cross-entropies -------------------------


@register("safe_nn_softmax_ce_with_logits_adam")
def safe_nn_softmax_ce_with_logits_adam():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("labels_onehot", [BATCH, 5])
    logits = softmax_ce.classifier(x, True)
    with tf.name_scope("loss"):
        xent = tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=logits)
        total = tf.reduce_mean(xent, name="total")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(total, name="train")
    normal, trigger = softmax_ce.classifier_feeds(114)
    desc = """Same classifier as softmax_ce_manual_log_softmax_adam with
    tf.nn.softmax_cross_entropy_with_logits; Adam, resource variables.
    Trigger: saturated logits (features x500) -> finite."""
    return Built(total, train, normal, trigger, desc)


@register("safe_log_softmax_ce_rmsprop")
def safe_log_softmax_ce_rmsprop():
    x = placeholder("features", [BATCH, FEAT])
    y = placeholder("labels_onehot", [BATCH, 5])
    logits = softmax_ce.classifier(x, False)
    with tf.name_scope("loss"):
        xent = -tf.reduce_sum(y * tf.nn.log_softmax(logits), axis=1)
        total = tf.reduce_mean(xent, name="total")
    train = tf.compat.v1.train.RMSPropOptimizer(1e-3).minimize(total, name="train")
    normal, trigger = softmax_ce.classifier_feeds(115)
    desc = """Hand-written CE on tf.nn.log_softmax: mean(-sum(y *
    log_softmax(z), 1)); RMSProp, ref variables.  Trigger: saturated logits
    (features x500) -> finite (log_softmax is bounded, 0 * finite = 0)."""
    return Built(total, train, normal, trigger, desc)


@register("safe_gan_softplus_adam")
def safe_gan_softplus_adam():
    logit_real, logit_fake = gan.gan_graph(True)
    with tf.name_scope("loss"):
        # -log(sigmoid(z)) = softplus(-z);  -log(1 - sigmoid(z)) = softplus(z)
        total = tf.reduce_mean(tf.math.softplus(-logit_real) + tf.math.softplus(logit_fake), name="discriminator")
    train = tf.compat.v1.train.AdamOptimizer(2e-4, beta1=0.5).minimize(
        total, var_list=scope_vars("discriminator"), name="train"
    )
    normal, trigger = gan.gan_feeds(116)
    desc = """GAN discriminator step written with softplus (= -log sigmoid),
    Adam on the discriminator variables, resource variables.  Trigger: data
    and noise x400 (saturated logits) -> finite."""
    return Built(total, train, normal, trigger, desc)


def _xlogy_entropy(logits):
    p = tf.nn.softmax(logits)
    return -tf.reduce_sum(tf.math.xlogy(p, p), axis=1)


@register("safe_entropy_xlogy_adam")
def safe_entropy_xlogy_adam():
    loss, train, normal, trigger = entropy.policy_model(_xlogy_entropy, tf.compat.v1.train.AdamOptimizer(1e-3))
    desc = """Policy-gradient agent of entropy_policy_softmax_where_log_adam with
    the entropy written as -sum(tf.math.xlogy(p, p)); Adam, ref variables.
    Trigger: saturated softmax (p exactly 0) -> finite (xlogy and its
    gradient are 0 at x == 0)."""
    return Built(loss, train, normal, trigger, desc)


def _double_where_entropy(p):
    safe_p = tf.where(p > 0, p, tf.ones_like(p))
    plogp = tf.where(p > 0, p * tf.math.log(safe_p), tf.zeros_like(p))
    return -tf.reduce_sum(plogp, axis=1)


@register("safe_entropy_double_where_sgd")
def safe_entropy_double_where_sgd():
    loss, train, normal, trigger = entropy.relu_attention_model(
        _double_where_entropy, tf.compat.v1.train.GradientDescentOptimizer(0.1)
    )
    desc = """ReLU attention of entropy_relu_attention_where_log_sgd with the
    double-where entropy tf.where(p > 0, p * log(tf.where(p > 0, p, 1)), 0);
    GradientDescent, resource variables.  Trigger: padding slots with p
    exactly 0 -> finite."""
    return Built(loss, train, normal, trigger, desc)


# --- guarded token normalisation --------------------------------------------


@register("safe_seq2seq_divide_no_nan_adam")
def safe_seq2seq_divide_no_nan_adam():
    xent, mask, normal, trigger = seq2seq._length_model(True, seed=117)
    loss = tf.math.divide_no_nan(tf.reduce_sum(xent * mask), tf.reduce_sum(mask), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    desc = """Decoder of seq2seq_sequence_mask_adam normalised with
    tf.math.divide_no_nan(sum(xent * mask), sum(mask)); Adam, resource
    variables.  Trigger: all lengths 0 -> loss 0, gradients 0."""
    return Built(loss, train, normal, trigger, desc)


@register("safe_seq2seq_maximum_count_sgd")
def safe_seq2seq_maximum_count_sgd():
    xent, mask, normal, trigger = seq2seq._length_model(False, seed=118)
    with tf.name_scope("loss"):
        n_tokens = tf.maximum(tf.reduce_sum(mask), 1.0, name="num_tokens")
        total = tf.math.truediv(tf.reduce_sum(xent * mask), n_tokens, name="total")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.5).minimize(total, name="train")
    desc = """Decoder normalised by tf.maximum(reduce_sum(mask), 1.0);
    GradientDescent, ref variables.  Trigger: all lengths 0 -> 0 / 1 = 0."""
    return Built(total, train, normal, trigger, desc)


@register("safe_seq2seq_divide_no_nan_eval")
def safe_seq2seq_divide_no_nan_eval():
    xent, mask, normal, trigger = seq2seq._length_model(True, seed=119)
    with tf.name_scope("eval"):
        loss = tf.math.divide_no_nan(tf.reduce_sum(xent * mask), tf.reduce_sum(mask), name="token_xent")
    desc = """Forward-only evaluation graph (train_op None) with
    divide_no_nan token normalisation.  Trigger: all lengths 0 -> 0."""
    return Built(loss, None, normal, trigger, desc)


# --- guarded means over positive anchors ------------------------------------


def _reg_cond_guard(box_pred, boxes, positive):
    pos_pred = tf.boolean_mask(box_pred, positive, name="pos_pred")
    pos_target = tf.boolean_mask(boxes, positive, name="pos_target")
    per_anchor = tf.reduce_sum(detection._smooth_l1(pos_pred - pos_target), axis=1)
    return tf.compat.v1.cond(
        tf.size(per_anchor) > 0,
        lambda: tf.reduce_mean(per_anchor),
        lambda: tf.constant(0.0),
        name="reg_loss",
    )


def _reg_where_guard(box_pred, boxes, positive):
    pos_pred = tf.boolean_mask(box_pred, positive, name="pos_pred")
    pos_target = tf.boolean_mask(boxes, positive, name="pos_target")
    per_anchor = tf.reduce_sum(detection._smooth_l1(pos_pred - pos_target), axis=1)
    n = tf.cast(tf.size(per_anchor), tf.float32)
    mean = tf.reduce_sum(per_anchor) / tf.maximum(n, 1.0)
    return tf.where(n > 0, mean, tf.zeros_like(mean), name="reg_loss")


@register("safe_detection_cond_guard_momentum")
def safe_detection_cond_guard_momentum():
    opt = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9)
    loss, train, normal, trigger = detection._detection_model(_reg_cond_guard, True, opt, seed=120)
    desc = """Detection head of detection_boolean_mask_momentum with the
    positive-anchor mean guarded by tf.compat.v1.cond(size(bm) > 0,
    reduce_mean(bm), 0.0) (v1 Switch/Merge); Momentum, resource variables.
    Trigger: no positive anchor -> the cond takes the 0 branch, finite."""
    return Built(loss, train, normal, trigger, desc)


@register("safe_detection_where_guard_adam")
def safe_detection_where_guard_adam():
    opt = tf.compat.v1.train.AdamOptimizer(1e-3)
    loss, train, normal, trigger = detection._detection_model(_reg_where_guard, False, opt, seed=121)
    desc = """Detection head with the positive-anchor mean written as
    where(n > 0, sum(bm) / maximum(n, 1), 0); Adam, ref variables.  Trigger:
    no positive anchor -> 0."""
    return Built(loss, train, normal, trigger, desc)


# --- safe norms -------------------------------------------------------------


def _safe_norm(d):
    sq = tf.reduce_sum(tf.square(d), axis=1)
    nonzero = sq > 0
    return tf.where(nonzero, tf.sqrt(tf.where(nonzero, sq, tf.ones_like(sq))), tf.zeros_like(sq))


@register("safe_triplet_double_where_norm_momentum")
def safe_triplet_double_where_norm_momentum():
    opt = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9)
    loss, train, normal, trigger = embedding.triplet_model(_safe_norm, opt, True, seed=122)
    desc = """Triplet loss of embedding_triplet_norm_momentum with the safe
    norm where(sq > 0, sqrt(where(sq > 0, sq, 1)), 0); Momentum, resource
    variables.  Trigger: anchor == positive rows -> finite."""
    return Built(loss, train, normal, trigger, desc)


@register("safe_cosine_l2_normalize_adam")
def safe_cosine_l2_normalize_adam():
    def normalize(v):
        return tf.nn.l2_normalize(v, axis=1)

    opt = tf.compat.v1.train.AdamOptimizer(1e-3)
    loss, train, normal, trigger = embedding.cosine_classifier_model(normalize, opt, False, seed=123)
    desc = """Cosine classifier of embedding_cosine_divide_by_norm_adam with
    tf.nn.l2_normalize (x * rsqrt(maximum(sum(x^2), 1e-12))); Adam, ref
    variables.  Trigger: a zero feature row -> finite (gradients up to ~1e6
    for that row, but finite)."""
    return Built(loss, train, normal, trigger, desc)
