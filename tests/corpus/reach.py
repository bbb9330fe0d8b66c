"""Hazards that local, depth-limited facts miss (issue #11's miss classes),
each in two forms: a zero denominator reached through a gather or a slice,
through arithmetic on masks, a division by a learned scale that training can
drive to 0, and a square root whose argument ordinary inputs bring to exactly
0 (a ReLU; an ``exp`` that underflows).  graphfix must find and repair them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, get_var, placeholder, positive_uniform, register

BATCH, FEAT, T = 6, 5, 4


def _rows():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, T])
    lengths = placeholder("lengths", [BATCH], tf.int32)
    z = dense(dense(x, 8, "net/hidden", activation=tf.nn.relu), T, "net/out")
    mask = tf.cast(tf.sequence_mask(lengths, T), tf.float32)
    return z, y, mask


def _feeds(seed, zero_rows=(0,), all_zero=False):
    rs = np.random.RandomState(seed)
    normal = {"inputs/x:0": rs.randn(BATCH, FEAT).astype(np.float32),
              "inputs/y:0": rs.randn(BATCH, T).astype(np.float32),
              "inputs/lengths:0": np.array([3, 2, 4, 1, 4, 2], np.int32)}
    lengths = normal["inputs/lengths:0"].copy()
    lengths[list(zero_rows)] = 0
    if all_zero:
        lengths[:] = 0
    return normal, dict(normal, **{"inputs/lengths:0": lengths})


# --- a zero denominator reached through a gather / a slice -------------------------

@register("reach_den_through_gather_adam", ("GF002",))
def reach_den_through_gather_adam():
    z, y, mask = _rows()
    per_row = tf.reduce_sum(tf.square(z - y) * mask, axis=1)
    counts = tf.reduce_sum(mask, axis=1)
    order = tf.constant([5, 4, 3, 2, 1, 0])
    den = tf.gather(counts, order, name="row_count")
    loss = tf.reduce_mean(tf.math.truediv(tf.gather(per_row, order), den), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, *_feeds(21), "per-row mean normalised by a gathered token count (a padded row: 0/0)")


@register("reach_den_through_slice_sgd", ("GF002",))
def reach_den_through_slice_sgd():
    z, y, mask = _rows()
    counts = tf.reduce_sum(mask, axis=1)
    first = counts[0]
    loss = tf.math.truediv(tf.reduce_sum(tf.square(z[0] - y[0]) * mask[0]), first, name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return Built(loss, train, *_feeds(22), "the first row's mean, normalised by its sliced token count")


# --- arithmetic on masks ---------------------------------------------------------

@register("reach_den_mask_product_adam", ("GF002",))
def reach_den_mask_product_adam():
    z, y, mask = _rows()
    keep = placeholder("keep", [BATCH, T], tf.bool)
    both = mask * tf.cast(keep, tf.float32)
    loss = tf.math.truediv(tf.reduce_sum(tf.square(z - y) * both), tf.reduce_sum(both) * 0.5, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    normal, trigger = _feeds(23)
    normal["inputs/keep:0"] = np.ones((BATCH, T), bool)
    trigger["inputs/keep:0"] = np.zeros((BATCH, T), bool)
    return Built(loss, train, normal, trigger, "normalised by half the sum of a product of two masks")


@register("reach_den_mask_sum_of_sums_momentum", ("GF002",))
def reach_den_mask_sum_of_sums_momentum():
    z, y, mask = _rows()
    extra = tf.cast(placeholder("extra", [BATCH], tf.bool), tf.float32)
    den = tf.add(tf.reduce_sum(mask), tf.reduce_sum(extra), name="den")
    loss = tf.math.truediv(tf.reduce_sum(tf.square(z - y) * mask), den, name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    normal, trigger = _feeds(24, all_zero=True)
    normal["inputs/lengths:0"] = np.array([3, 2, 4, 1, 4, 2], np.int32)
    normal["inputs/extra:0"] = np.array([1, 0, 0, 1, 0, 0], bool)
    trigger["inputs/extra:0"] = np.zeros(BATCH, bool)
    return Built(loss, train, normal, trigger, "normalised by the sum of two mask sums, both 0 on an empty batch")


# --- a division by a learned scale ---------------------------------------------

def _classifier():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, T])
    z = dense(dense(x, 8, "net/hidden", activation=tf.nn.relu), T, "net/out")
    return z, y


def _scale_feeds(seed, read):
    rs = np.random.RandomState(seed)
    normal = {"inputs/x:0": rs.randn(BATCH, FEAT).astype(np.float32),
              "inputs/y:0": np.eye(T, dtype=np.float32)[rs.randint(0, T, BATCH)]}
    return normal, dict(normal, **{read: np.float32(0.0)})


@register("reach_learned_temperature_sgd", ("GF002",))
def reach_learned_temperature_sgd():
    z, y = _classifier()
    temp = get_var("temperature", [], tf.compat.v1.ones_initializer(), use_resource=False)
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z / temp), name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return Built(loss, train, *_scale_feeds(25, "temperature/read:0"),
                 "logits / a learned temperature; training can drive it to 0 (trigger: temperature 0)")


@register("reach_learned_scale_squared_adam", ("GF002",))
def reach_learned_scale_squared_adam():
    z, y = _classifier()
    sigma = get_var("sigma", [], tf.compat.v1.ones_initializer(), use_resource=False)
    loss = tf.math.truediv(tf.reduce_mean(tf.square(z - y)), 2.0 * sigma * sigma, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, *_scale_feeds(26, "sigma/read:0"), "mse / (2 sigma^2) with a learned sigma")


# --- a square root of a value ordinary inputs bring to exactly 0 -----------------

@register("reach_sqrt_relu_adam", ("GF004",))
def reach_sqrt_relu_adam():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, T])
    h = dense(x, 8, "net/hidden", activation=tf.nn.relu, kernel_init=positive_uniform("kernel"))
    z = dense(h, T, "net/out", kernel_init=positive_uniform("kernel"))
    feature = tf.sqrt(tf.nn.relu(z), name="root_feature")
    loss = tf.reduce_mean(tf.square(feature - y), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    rs = np.random.RandomState(27)
    normal = {"inputs/x:0": np.abs(rs.randn(BATCH, FEAT)).astype(np.float32),
              "inputs/y:0": rs.rand(BATCH, T).astype(np.float32)}
    # x = 0 and zero biases give a pre-activation of exactly 0.
    trigger = dict(normal, **{"inputs/x:0": np.zeros((BATCH, FEAT), np.float32)})
    return Built(loss, train, normal, trigger, "sqrt(relu(z)): the ReLU gives exactly 0, sqrt' is inf there")


@register("reach_vae_sqrt_exp_adam", ("GF004",))
def reach_vae_sqrt_exp_adam():
    x = placeholder("x", [BATCH, FEAT])
    h = dense(x, 8, "enc/hidden", activation=tf.nn.relu)
    mu = dense(h, 2, "enc/mu")
    log_var = dense(h, 2, "enc/log_var")
    eps = tf.random.normal(tf.shape(mu), seed=3)
    z = mu + eps * tf.sqrt(tf.exp(tf.clip_by_value(log_var, -100.0, 87.0)))
    recon = dense(z, FEAT, "dec/out")
    kl = -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mu) - tf.exp(tf.clip_by_value(log_var, -100.0, 87.0)), 1)
    loss = tf.reduce_mean(tf.reduce_sum(tf.square(recon - x), 1) + kl, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    rs = np.random.RandomState(28)
    normal = {"inputs/x:0": rs.randn(BATCH, FEAT).astype(np.float32)}
    trigger = {"inputs/x:0": normal["inputs/x:0"], "enc/log_var/BiasAdd:0": -100.0 * np.ones((BATCH, 2), np.float32)}
    return Built(loss, train, normal, trigger,
                 "VAE z = mu + eps * sqrt(exp(clip(log_var, -100, 87))): exp flushes to 0, sqrt' is inf")


# --- a saturating output against fed targets on the point it attains ------------

def _saturated(seed, low):
    x = placeholder("x", [BATCH, T])
    t = placeholder("t", [BATCH, T])
    gain = get_var("gain", [], tf.compat.v1.ones_initializer(), use_resource=False)
    rs = np.random.RandomState(seed)
    labels = rs.randint(0, 2, (BATCH, T)).astype(np.float32)
    targets = labels if low == 0 else 2 * labels - 1
    normal = {"inputs/x:0": rs.randn(BATCH, T).astype(np.float32), "inputs/t:0": targets}
    # confident inputs: the output saturates to exactly the targets' values
    trigger = dict(normal, **{"inputs/x:0": (200.0 * (2 * labels - 1)).astype(np.float32)})
    return x, t, gain, normal, trigger


@register("reach_rmse_tanh_binary_targets_adam", ("GF004",))
def reach_rmse_tanh_binary_targets_adam():
    x, t, gain, normal, trigger = _saturated(29, -1)
    loss = tf.sqrt(tf.reduce_mean(tf.square(t - tf.tanh(gain * x))), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, normal, trigger, "RMSE of tanh(g * x) against fed targets of exactly +-1: tanh "
                 "saturates to exactly +-1, the RMSE is 0 and sqrt' is inf there")


@register("reach_norm_sigmoid_binary_targets_momentum", ("GF004",))
def reach_norm_sigmoid_binary_targets_momentum():
    x, t, gain, normal, trigger = _saturated(30, 0)
    d = tf.math.reduce_euclidean_norm(tf.sigmoid(gain * x) - t, axis=1)
    loss = tf.reduce_mean(d, name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    return Built(loss, train, normal, trigger, "per-example norm of sigmoid(g * x) - y with fed 0/1 targets: "
                 "sigmoid saturates to exactly 0 and 1, the norm is 0 and its gradient NaN")
