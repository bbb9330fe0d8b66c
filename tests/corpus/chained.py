"""Chains of guards (issue #10): graphs where one rule guards a node another
rule created, rebuilt from numerical bugs reported in studies of real
TensorFlow programs.

* a hand-written softmax ``exp(l) / reduce_sum(exp(l))`` under
  ``-reduce_sum(y * log(abs(p)))`` (GradientDescent): GF006 guards the
  product, then GF003/GF009 guard the ``safe_input`` GF006 created;
* a VAE whose Bernoulli reconstruction is written
  ``log(1e-10 + 1 - sigmoid(z))`` (Adam): in float32 ``1e-10 + 1 == 1``,
  the epsilon is absorbed and a saturated sigmoid gives log(0);
* a VAE reparameterisation ``z = mu + eps * sqrt(exp(clip(log_sigma_sq,
  -100, 87)))`` (Adam): below about -87.3 ``exp`` flushes to 0 and the
  gradient of ``sqrt`` at 0 times the 0 from ``exp`` is NaN, although the
  clip looks like a guard.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, placeholder, register

# --- hand-written softmax, log(abs(p)) -------------------------------------

SB, SF, SC = 6, 5, 4


@register("chained_manual_softmax_log_abs_sgd", ("GF006", "GF008", "GF009"),
          may_also_match=("GF002", "GF003", "GF005"))
def chained_manual_softmax_log_abs_sgd():
    x = placeholder("features", [SB, SF])
    y = placeholder("labels_onehot", [SB, SC])
    logits = dense(x, SC, "classifier")
    e = tf.exp(logits)
    p = tf.math.truediv(e, tf.reduce_sum(e, axis=1, keepdims=True), name="probs")
    with tf.name_scope("loss"):
        total = tf.math.truediv(-tf.reduce_sum(y * tf.math.log(tf.abs(p))), float(SB), name="total")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(total, name="train")

    rs = np.random.RandomState(1001)
    xs = rs.randn(SB, SF).astype(np.float32)
    ys = np.eye(SC, dtype=np.float32)[rs.randint(0, SC, size=SB)]
    normal = {"inputs/features:0": xs, "inputs/labels_onehot:0": ys}
    xt = xs.copy()
    xt[1] *= 400.0  # exp overflows to inf: inf / inf = NaN
    xt[4] *= -400.0  # and the other way: a class probability underflows to 0, log(0) * 0 = NaN
    trigger = {"inputs/features:0": xt, "inputs/labels_onehot:0": ys}
    desc = """Classifier with a hand-written softmax p = exp(l) /
    reduce_sum(exp(l)) and loss -reduce_sum(y * log(abs(p))) / batch;
    GradientDescent, resource variables.  Trigger: rows with large features:
    exp overflows (inf / inf) or a probability underflows to 0 (0 * log 0)."""
    return Built(total, train, normal, trigger, desc)


# --- VAE helpers -------------------------------------------------------------

VB, VF, VH, VZ = 6, 8, 6, 2


def _const_init(seed, shape, scale):
    return tf.compat.v1.constant_initializer(np.random.RandomState(seed).randn(*shape).astype(np.float32) * scale)


def _encoder(x):
    h = dense(x, VH, "encoder/hidden", activation=tf.tanh, kernel_init=_const_init(1, (VF, VH), 0.5))
    mu = dense(h, VZ, "encoder/mu", kernel_init=_const_init(2, (VH, VZ), 0.5))
    # a linear variance head straight from the input
    log_sigma_sq = dense(x, VZ, "encoder/log_sigma_sq", kernel_init=_const_init(3, (VF, VZ), 0.5))
    return mu, log_sigma_sq


def _decoder(z):
    h = dense(z, VH, "decoder/hidden", activation=tf.nn.relu, kernel_init=_const_init(4, (VZ, VH), 0.5))
    return dense(h, VF, "decoder/logits", kernel_init=_const_init(5, (VH, VF), 0.5))


def _kl(mu, log_sigma_sq):
    return -0.5 * tf.reduce_sum(1.0 + log_sigma_sq - tf.square(mu) - tf.exp(log_sigma_sq), axis=1)


def _binary_images(seed):
    return (np.random.RandomState(seed).rand(VB, VF) > 0.5).astype(np.float32)


@register("chained_vae_log_one_minus_sigmoid_adam", ("GF006",), may_also_match=("GF003", "GF004", "GF005",
                                                                                 "GF008", "GF009"))
def chained_vae_log_one_minus_sigmoid_adam():
    x = placeholder("images", [VB, VF])
    eps = placeholder("noise", [VB, VZ])
    mu, log_sigma_sq = _encoder(x)
    z = mu + eps * tf.sqrt(tf.exp(log_sigma_sq))
    x_hat = tf.sigmoid(_decoder(z), name="reconstruction")
    with tf.name_scope("loss"):
        # float32: 1e-10 + 1 == 1, so the "epsilon" is gone and log(1 - 1) = -inf
        recon = -tf.reduce_sum(x * tf.math.log(1e-10 + x_hat) + (1 - x) * tf.math.log(1e-10 + 1 - x_hat), axis=1)
        total = tf.reduce_mean(recon + _kl(mu, log_sigma_sq), name="total")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(total, name="train")

    rs = np.random.RandomState(1002)
    xs = _binary_images(1003)
    normal = {"inputs/images:0": xs, "inputs/noise:0": rs.randn(VB, VZ).astype(np.float32)}
    noise = normal["inputs/noise:0"].copy()
    noise[[0, 3]] = 300.0  # an outlier draw: the decoder saturates, sigmoid == 1 exactly
    trigger = {"inputs/images:0": xs, "inputs/noise:0": noise}
    desc = """VAE with a Bernoulli decoder written -sum(x * log(1e-10 + x_hat)
    + (1 - x) * log(1e-10 + 1 - x_hat)); in float32 1e-10 + 1 == 1, so the
    epsilon is absorbed; Adam, resource variables.  Trigger: an outlier noise
    draw saturates the decoder (sigmoid == 1): log(0) = -inf, and where
    x == 1, 0 * -inf = NaN."""
    return Built(total, train, normal, trigger, desc)


@register("chained_vae_reparam_sqrt_exp_adam", ("GF004",), may_also_match=("GF003", "GF005", "GF006", "GF008",
                                                                            "GF009"))
def chained_vae_reparam_sqrt_exp_adam():
    x = placeholder("images", [VB, VF])
    eps = placeholder("noise", [VB, VZ])
    mu, log_sigma_sq = _encoder(x)
    clipped = tf.clip_by_value(log_sigma_sq, -100.0, 87.0)
    z = tf.add(mu, eps * tf.sqrt(tf.exp(clipped)), name="z")
    logits = _decoder(z)
    with tf.name_scope("loss"):
        recon = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=1)
        total = tf.reduce_mean(recon + _kl(mu, clipped), name="total")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(total, name="train")

    rs = np.random.RandomState(1004)
    xs = _binary_images(1005)
    normal = {"inputs/images:0": xs, "inputs/noise:0": rs.randn(VB, VZ).astype(np.float32)}
    # An input whose encoded log-variance is about -95: inside the clip range,
    # but exp(-95) flushes to 0 in float32, and d sqrt(0) = inf, inf * 0 = NaN.
    xt = xs.copy()
    xt[2] = _input_for_log_variance(-95.0)
    trigger = {"inputs/images:0": xt, "inputs/noise:0": normal["inputs/noise:0"]}
    desc = """VAE reparameterisation z = mu + eps * sqrt(exp(clip(log_sigma_sq,
    -100, 87))) with a sigmoid cross-entropy decoder; Adam, resource
    variables.  Trigger: an input whose log-variance is about -95 (inside the
    clip): exp underflows to 0, the gradient of sqrt there is inf and
    inf * 0 = NaN reaches every encoder variable."""
    return Built(total, train, normal, trigger, desc)


def _input_for_log_variance(target: float) -> np.ndarray:
    """An input row whose encoder log-variance is ``target`` in both latent
    dimensions (the variance head is linear with constant weights, bias 0)."""
    w3 = np.random.RandomState(3).randn(VF, VZ).astype(np.float32) * 0.5
    return np.linalg.lstsq(w3.T, np.full(VZ, target), rcond=None)[0].astype(np.float32)
