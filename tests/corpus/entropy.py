"""GF003: entropy regularisers written as ``where(p > 0, p * log(p), 0)``.

The where keeps the forward pass finite where p == 0, but the gradient of the
untaken branch is 0 * log(0) = 0 * -inf = NaN (and log's own gradient
0 * 1/0), and the NaN reaches every variable upstream of p.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, placeholder, positive_uniform, register

# --- ReLU attention with an entropy bonus ----------------------------------

BATCH = 6
SLOTS = 5
FEAT = 4


def relu_attention_model(entropy_fn, optimizer, use_resource=True):
    """Slots scored by relu(x . w + b) (positive weights, bias 0.5), weights
    normalised to a distribution p that is exactly 0 for inactive slots,
    context = sum_s p_s x_s, linear regression head; loss = MSE - 0.01 * H(p)."""
    x = placeholder("slots", [BATCH, SLOTS, FEAT])
    y = placeholder("targets", [BATCH])
    flat = tf.reshape(x, [BATCH * SLOTS, FEAT])
    scores = dense(
        flat,
        1,
        "attention",
        activation=tf.nn.relu,
        kernel_init=positive_uniform("kernel"),
        bias_init=0.5,
        use_resource=use_resource,
    )
    scores = tf.reshape(scores, [BATCH, SLOTS])
    p = tf.math.truediv(scores, tf.reduce_sum(scores, axis=1, keepdims=True) + 1e-6, name="attention_weights")
    context = tf.reduce_sum(tf.expand_dims(p, -1) * x, axis=1)
    pred = tf.squeeze(dense(context, 1, "regressor", use_resource=use_resource), axis=1)
    with tf.name_scope("loss"):
        mse = tf.reduce_mean(tf.square(pred - y), name="mse")
        ent = tf.reduce_mean(entropy_fn(p), name="attention_entropy")
        total = tf.subtract(mse, 0.01 * ent, name="total")
    train = optimizer.minimize(total, name="train")

    rs = np.random.RandomState(41)
    xs = rs.uniform(0.0, 1.0, size=(BATCH, SLOTS, FEAT)).astype(np.float32)
    normal = {"inputs/slots:0": xs, "inputs/targets:0": rs.randn(BATCH).astype(np.float32)}
    xt = xs.copy()
    # "empty" slots (padding encoded as -4): score relu(<= -0.8 + 0.5) == 0 exactly
    xt[0, 3:] = -4.0
    xt[2, 1] = -4.0
    trigger = dict(normal)
    trigger["inputs/slots:0"] = xt
    return total, train, normal, trigger


def where_entropy(p):
    plogp = tf.where(p > 0, p * tf.math.log(p), tf.zeros_like(p))
    return -tf.reduce_sum(plogp, axis=1)


@register("entropy_relu_attention_where_log_sgd", ("GF003",), may_also_match=("GF006",))
def entropy_relu_attention_where_log_sgd():
    loss, train, normal, trigger = relu_attention_model(
        where_entropy, tf.compat.v1.train.GradientDescentOptimizer(0.1)
    )
    desc = """ReLU attention pooling (weights p = relu(score) / (sum + 1e-6),
    exactly 0 for inactive slots) feeding a regression head; entropy bonus
    H = -sum(tf.where(p > 0, p * log(p), zeros_like(p))) (SelectV2);
    GradientDescent, resource variables.  Trigger: padding slots whose score
    is exactly 0 -> forward finite, gradient NaN (0 * log 0)."""
    return Built(loss, train, normal, trigger, desc)


# --- policy-gradient agent with an entropy bonus on softmax probabilities ---

OBS = 6
ACTIONS = 4
PG_BATCH = 8


def policy_model(entropy_fn, optimizer, use_resource=False):
    obs = placeholder("observations", [PG_BATCH, OBS])
    actions = placeholder("actions", [PG_BATCH], tf.int32)
    adv = placeholder("advantages", [PG_BATCH])
    h = dense(obs, 16, "policy/hidden", activation=tf.nn.relu, use_resource=use_resource)
    logits = dense(h, ACTIONS, "policy/logits", use_resource=use_resource)
    with tf.name_scope("loss"):
        neglogp = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=actions, logits=logits)
        pg = tf.reduce_mean(neglogp * adv, name="policy_gradient")
        ent = tf.reduce_mean(entropy_fn(logits), name="entropy")
        total = tf.subtract(pg, 0.01 * ent, name="total")
    train = optimizer.minimize(total, name="train")

    rs = np.random.RandomState(42)
    o = rs.randn(PG_BATCH, OBS).astype(np.float32)
    normal = {
        "inputs/observations:0": o,
        "inputs/actions:0": rs.randint(0, ACTIONS, size=PG_BATCH).astype(np.int32),
        "inputs/advantages:0": rs.randn(PG_BATCH).astype(np.float32),
    }
    trigger = dict(normal)
    # un-normalised observations (a sensor glitch): logit gaps of hundreds, so
    # some softmax probabilities underflow to exactly 0
    trigger["inputs/observations:0"] = (o * 500.0).astype(np.float32)
    return total, train, normal, trigger


def softmax_where_entropy(logits):
    p = tf.nn.softmax(logits)
    plogp = tf.compat.v1.where(p > 0, p * tf.math.log(p), tf.zeros_like(p))  # Select (v1)
    return -tf.reduce_sum(plogp, axis=1)


@register("entropy_policy_softmax_where_log_adam", ("GF003",), may_also_match=("GF005", "GF006"))
def entropy_policy_softmax_where_log_adam():
    loss, train, normal, trigger = policy_model(softmax_where_entropy, tf.compat.v1.train.AdamOptimizer(1e-3))
    desc = """Policy-gradient agent (MLP policy, sparse softmax CE x advantage,
    safe) with an entropy bonus H = -sum(tf.compat.v1.where(p > 0, p * log(p), 0))
    over p = softmax(logits) (v1 Select); Adam, ref variables.  Trigger:
    observations scaled x500 saturate the softmax (some p exactly 0) ->
    forward finite, gradient NaN.  Log(Softmax) also matches GF005; LogSoftmax
    or a double-where both repair it."""
    return Built(loss, train, normal, trigger, desc)
