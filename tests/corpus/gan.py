"""GF005: GAN losses written with log(sigmoid(.)) by hand.

When the discriminator saturates (|logit| > ~104 in float32) sigmoid
returns exactly 0 or 1, log(0) = -inf: the loss is inf and the gradient is
inf * 0 = NaN.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, placeholder, register, scope_vars

BATCH = 8
NOISE = 4
DATA = 3


def generator(z, use_resource):
    with tf.compat.v1.variable_scope("generator", reuse=tf.compat.v1.AUTO_REUSE):
        h = dense(z, 8, "hidden", activation=tf.nn.relu, use_resource=use_resource)
        return dense(h, DATA, "out", use_resource=use_resource)


def discriminator(x, use_resource):
    with tf.compat.v1.variable_scope("discriminator", reuse=tf.compat.v1.AUTO_REUSE):
        h = dense(x, 8, "hidden", activation=tf.nn.relu, use_resource=use_resource)
        return tf.squeeze(dense(h, 1, "logit", use_resource=use_resource), axis=1)


def gan_graph(use_resource):
    x_real = placeholder("real", [BATCH, DATA])
    z = placeholder("noise", [BATCH, NOISE])
    x_fake = generator(z, use_resource)
    return discriminator(x_real, use_resource), discriminator(x_fake, use_resource)


def gan_feeds(seed):
    rs = np.random.RandomState(seed)
    real = rs.randn(BATCH, DATA).astype(np.float32)
    noise = rs.randn(BATCH, NOISE).astype(np.float32)
    normal = {"inputs/real:0": real, "inputs/noise:0": noise}
    # un-normalised data / exploding noise: every direction scaled x400, so the
    # discriminator logits reach hundreds of both signs and sigmoid saturates
    trigger = {"inputs/real:0": 400.0 * real, "inputs/noise:0": 400.0 * noise}
    return normal, trigger


@register("gan_discriminator_log_sigmoid_adam", ("GF005",))
def gan_discriminator_log_sigmoid_adam():
    logit_real, logit_fake = gan_graph(True)
    with tf.name_scope("loss"):
        d_real = tf.sigmoid(logit_real)
        d_fake = tf.sigmoid(logit_fake)
        total = tf.negative(
            tf.reduce_mean(tf.math.log(d_real) + tf.math.log(1.0 - d_fake)), name="discriminator"
        )
    train = tf.compat.v1.train.AdamOptimizer(2e-4, beta1=0.5).minimize(
        total, var_list=scope_vars("discriminator"), name="train"
    )
    normal, trigger = gan_feeds(81)
    desc = """GAN discriminator step: MLP generator and discriminator,
    loss = -mean(log(sigmoid(D(x))) + log(1 - sigmoid(D(G(z))))), Adam on the
    discriminator variables only (var_list), resource variables; gradients
    reported for all trainable variables (generator too).  Trigger: real data
    and noise scaled x400, logits of hundreds -> sigmoid exactly 0 / 1,
    loss inf and gradients NaN."""
    return Built(total, train, normal, trigger, desc)


@register("gan_generator_log_sigmoid_momentum", ("GF005",))
def gan_generator_log_sigmoid_momentum():
    _, logit_fake = gan_graph(False)
    with tf.name_scope("loss"):
        total = tf.negative(tf.reduce_mean(tf.math.log(tf.sigmoid(logit_fake))), name="generator")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(
        total, var_list=scope_vars("generator"), name="train"
    )
    normal, trigger = gan_feeds(82)
    desc = """GAN generator step with the non-saturating loss
    -mean(log(sigmoid(D(G(z))))), Momentum on the generator variables only,
    ref variables.  Trigger: noise scaled x400 -> some D(G(z)) logits far
    below -104, sigmoid exactly 0, loss inf and gradients NaN."""
    return Built(total, train, normal, trigger, desc)
