"""GF003: a ``tf.where`` that guards the forward pass of a restricted-domain
op on pair distances, but not its gradient.

Siamese encoders compare pairs through the squared distance ``sq``; the code
writes ``where(sq > 0, f(sq), 0)`` so identical pairs (sq == 0) do not
produce inf/NaN in the loss.  The gradient still goes through ``f`` at
sq == 0: for Pow, Log and RealDiv that is 0 * inf = NaN on every TF version.
For Sqrt, Rsqrt and Reciprocal the TF 2.x CPU kernels return 0 when the
incoming gradient is exactly 0, so the NaN is hidden on the installed TF but
appears with TF 1.x kernels and under XLA; those cases have
``hidden_on_tf2=True`` and their trigger feeds are finite here.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, placeholder, register

PAIRS = 6
FEAT = 5
EMBED = 4
MARGIN = 1.0


def encoder(x, use_resource):
    with tf.compat.v1.variable_scope("encoder", reuse=tf.compat.v1.AUTO_REUSE):
        h = dense(x, 8, "hidden", activation=tf.nn.tanh, use_resource=use_resource)
        return dense(h, EMBED, "embed", use_resource=use_resource)


def pair_feeds(seed):
    rs = np.random.RandomState(seed)
    a = rs.randn(PAIRS, FEAT).astype(np.float32)
    b = rs.randn(PAIRS, FEAT).astype(np.float32)
    same = np.array([1, 0, 1, 0, 0, 1], dtype=np.float32)
    normal = {"inputs/left:0": a, "inputs/right:0": b, "inputs/same:0": same}
    b_t = b.copy()
    b_t[1] = a[1]  # duplicate image in a negative pair
    b_t[2] = a[2]  # duplicate image in a positive pair
    trigger = dict(normal)
    trigger["inputs/right:0"] = b_t
    return normal, trigger


def pair_model(term_fn, optimizer, use_resource, seed):
    """loss = mean(same * sq + (1 - same) * term_fn(sq)); sq = |e(l) - e(r)|^2."""
    left = placeholder("left", [PAIRS, FEAT])
    right = placeholder("right", [PAIRS, FEAT])
    same = placeholder("same", [PAIRS])
    e_left = encoder(left, use_resource)
    e_right = encoder(right, use_resource)
    with tf.name_scope("loss"):
        sq = tf.reduce_sum(tf.square(e_left - e_right), axis=1, name="sq_dist")
        per_pair = same * sq + (1.0 - same) * term_fn(sq)
        total = tf.reduce_mean(per_pair, name="total")
    train = optimizer.minimize(total, name="train")
    normal, trigger = pair_feeds(seed)
    return total, train, normal, trigger


def _hinge_on_distance(dist):
    return tf.square(tf.nn.relu(MARGIN - dist))


_CONTRASTIVE = """Siamese contrastive loss (shared 2-layer encoder, called twice
with AUTO_REUSE): mean(same * sq + (1 - same) * relu(margin - d)^2) with
d = {expr}; {opt}.  Trigger: two pairs with identical inputs (sq == 0
exactly). {effect}"""

_REPULSION = """Siamese embedding with an inverse-distance repulsion term:
mean(same * sq + (1 - same) * 0.1 * {expr}); {opt}.  Trigger: two pairs with
identical inputs (sq == 0 exactly). {effect}"""

_HIDDEN = """On TF 2.x CPU the masked gradient is 0 (kernel checks for a zero
incoming gradient), so the trigger is finite here; TF 1.x kernels and XLA
give NaN (0 * inf) - graphfix must still double-where it."""

_NAN = "Forward finite, gradient NaN (0 * inf) on TF 2.21 too."


@register("where_sqrt_contrastive_momentum", ("GF003",), hidden_on_tf2=True, may_also_match=("GF004",))
def where_sqrt_contrastive_momentum():
    def term(sq):
        d = tf.where(sq > 0, tf.sqrt(sq), tf.zeros_like(sq), name="dist")
        return _hinge_on_distance(d)

    opt = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9)
    loss, train, normal, trigger = pair_model(term, opt, True, seed=51)
    desc = _CONTRASTIVE.format(
        expr="tf.where(sq > 0, tf.sqrt(sq), 0)", opt="Momentum, resource variables", effect=_HIDDEN
    )
    return Built(loss, train, normal, trigger, desc)


@register("where_pow_contrastive_adam", ("GF003",), may_also_match=("GF004",))
def where_pow_contrastive_adam():
    def term(sq):
        d = tf.where(sq > 0, tf.pow(sq, 0.5), tf.zeros_like(sq), name="dist")
        return _hinge_on_distance(d)

    opt = tf.compat.v1.train.AdamOptimizer(1e-3)
    loss, train, normal, trigger = pair_model(term, opt, False, seed=52)
    desc = _CONTRASTIVE.format(
        expr="tf.where(sq > 0, tf.pow(sq, 0.5), 0)", opt="Adam, ref variables", effect=_NAN
    )
    return Built(loss, train, normal, trigger, desc)


@register("where_reciprocal_repulsion_sgd", ("GF003",), hidden_on_tf2=True)
def where_reciprocal_repulsion_sgd():
    def term(sq):
        return 0.1 * tf.where(sq > 0, tf.math.reciprocal(sq), tf.zeros_like(sq), name="inv_sq")

    opt = tf.compat.v1.train.GradientDescentOptimizer(0.05)
    loss, train, normal, trigger = pair_model(term, opt, True, seed=53)
    desc = _REPULSION.format(
        expr="tf.where(sq > 0, tf.math.reciprocal(sq), 0)", opt="GradientDescent, resource variables", effect=_HIDDEN
    )
    return Built(loss, train, normal, trigger, desc)


@register("where_realdiv_repulsion_rmsprop", ("GF003",))
def where_realdiv_repulsion_rmsprop():
    def term(sq):
        return 0.1 * tf.where(sq > 0, 1.0 / sq, tf.zeros_like(sq), name="inv_sq")

    opt = tf.compat.v1.train.RMSPropOptimizer(1e-3)
    loss, train, normal, trigger = pair_model(term, opt, False, seed=54)
    desc = _REPULSION.format(
        expr="tf.where(sq > 0, 1.0 / sq, 0) (RealDiv)", opt="RMSProp, ref variables", effect=_NAN
    )
    return Built(loss, train, normal, trigger, desc)


@register("where_rsqrt_repulsion_adagrad", ("GF003",), hidden_on_tf2=True)
def where_rsqrt_repulsion_adagrad():
    def term(sq):
        return 0.1 * tf.where(sq > 0, tf.math.rsqrt(sq), tf.zeros_like(sq), name="inv_dist")

    opt = tf.compat.v1.train.AdagradOptimizer(0.05)
    loss, train, normal, trigger = pair_model(term, opt, True, seed=55)
    desc = _REPULSION.format(
        expr="tf.where(sq > 0, tf.math.rsqrt(sq), 0)", opt="Adagrad, resource variables", effect=_HIDDEN
    )
    return Built(loss, train, normal, trigger, desc)


@register("where_log_distance_momentum", ("GF003",))
def where_log_distance_momentum():
    def term(sq):
        # push negatives apart on a log scale: relu(log(margin^2) - log(sq))
        log_sq = tf.where(sq > 0, tf.math.log(sq), tf.zeros_like(sq), name="log_sq")
        return tf.nn.relu(np.float32(np.log(MARGIN**2)) - log_sq)

    opt = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9)
    loss, train, normal, trigger = pair_model(term, opt, False, seed=56)
    desc = f"""Siamese embedding with a log-distance hinge for negatives:
    mean(same * sq + (1 - same) * relu(log(margin^2) - tf.where(sq > 0,
    tf.math.log(sq), 0))); Momentum, ref variables.  Trigger: two pairs with
    identical inputs (sq == 0 exactly). {_NAN}"""
    return Built(loss, train, normal, trigger, desc)
