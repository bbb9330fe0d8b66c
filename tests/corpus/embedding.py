"""GF004: Euclidean norms of embedding differences (triplet / contrastive
losses) and ``x / norm(x)`` normalisation.

At an exactly-zero vector (identical pair, zero feature row) sqrt'(0) = inf;
multiplied by the zero difference that is NaN, and ``x / norm(x)`` is 0/0 in
the forward pass too.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, get_var, placeholder, register
from .where_grad import encoder

BATCH = 6
FEAT = 5
TRIPLET_MARGIN = 1.0
MARGIN = 1.0


# --- triplet loss ----------------------------------------------------------


def triplet_model(norm_fn, optimizer, use_resource, seed):
    anchor = placeholder("anchor", [BATCH, FEAT])
    pos = placeholder("positive", [BATCH, FEAT])
    neg = placeholder("negative", [BATCH, FEAT])
    ea, ep, en = (encoder(t, use_resource) for t in (anchor, pos, neg))
    with tf.name_scope("loss"):
        d_ap = norm_fn(ea - ep)
        d_an = norm_fn(en - ea)
        total = tf.reduce_mean(tf.nn.relu(d_ap - d_an + TRIPLET_MARGIN), name="total")
    train = optimizer.minimize(total, name="train")

    rs = np.random.RandomState(seed)
    a = rs.randn(BATCH, FEAT).astype(np.float32)
    p = (a + 0.3 * rs.randn(BATCH, FEAT)).astype(np.float32)
    n = rs.randn(BATCH, FEAT).astype(np.float32)
    normal = {"inputs/anchor:0": a, "inputs/positive:0": p, "inputs/negative:0": n}
    pt, nt = p.copy(), n.copy()
    pt[[0, 3]] = a[[0, 3]]  # positive is the same image as the anchor
    nt[[0, 3]] = a[[0, 3]] + 0.01 * rs.randn(2, FEAT).astype(np.float32)  # hard negative: hinge active
    trigger = dict(normal)
    trigger["inputs/positive:0"] = pt
    trigger["inputs/negative:0"] = nt
    return total, train, normal, trigger


_TRIPLET = """Triplet loss mean(relu(d(a, p) - d(a, n) + {m})) over a shared
2-layer encoder (called three times with AUTO_REUSE), d = {expr}; {opt}.
Trigger: anchor and positive are the same input in two rows (with hard
negatives so the hinge is active) -> distance exactly 0, gradient NaN."""


@register("embedding_triplet_norm_momentum", ("GF004",))
def embedding_triplet_norm_momentum():
    def norm(d):
        return tf.norm(d, axis=1)

    opt = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9)
    loss, train, normal, trigger = triplet_model(norm, opt, True, seed=71)
    desc = _TRIPLET.format(m=TRIPLET_MARGIN, expr="tf.norm(diff, axis=1)", opt="Momentum, resource variables")
    return Built(loss, train, normal, trigger, desc)


@register("embedding_triplet_euclidean_norm_sgd", ("GF004",))
def embedding_triplet_euclidean_norm_sgd():
    def norm(d):
        return tf.math.reduce_euclidean_norm(d, axis=1)

    opt = tf.compat.v1.train.GradientDescentOptimizer(0.05)
    loss, train, normal, trigger = triplet_model(norm, opt, False, seed=72)
    desc = _TRIPLET.format(
        m=TRIPLET_MARGIN,
        expr="tf.math.reduce_euclidean_norm(diff, axis=1) (EuclideanNorm op)",
        opt="GradientDescent, ref variables",
    )
    return Built(loss, train, normal, trigger, desc)


# --- contrastive loss on a hand-written distance ----------------------------


def contrastive_model(dist_fn, optimizer, use_resource, seed):
    left = placeholder("left", [BATCH, FEAT])
    right = placeholder("right", [BATCH, FEAT])
    same = placeholder("same", [BATCH])
    el, er = encoder(left, use_resource), encoder(right, use_resource)
    with tf.name_scope("loss"):
        d = dist_fn(el - er)
        per_pair = same * tf.square(d) + (1.0 - same) * tf.square(tf.nn.relu(MARGIN - d))
        total = tf.reduce_mean(per_pair, name="total")
    train = optimizer.minimize(total, name="train")

    rs = np.random.RandomState(seed)
    a = rs.randn(BATCH, FEAT).astype(np.float32)
    b = rs.randn(BATCH, FEAT).astype(np.float32)
    s = np.array([1, 0, 0, 1, 0, 1], dtype=np.float32)
    normal = {"inputs/left:0": a, "inputs/right:0": b, "inputs/same:0": s}
    bt = b.copy()
    bt[[1, 3]] = a[[1, 3]]  # identical inputs, one labelled dissimilar, one similar
    trigger = dict(normal)
    trigger["inputs/right:0"] = bt
    return total, train, normal, trigger


_CONTRASTIVE = """Siamese contrastive loss mean(same * d^2 + (1 - same) *
relu({m} - d)^2), d = {expr}; {opt}.  Trigger: identical left/right inputs in
two rows (one dissimilar pair, so the hinge pushes on d == 0) -> gradient
NaN (sqrt'(0) = inf times the zero difference)."""


@register("embedding_contrastive_sqrt_adam", ("GF004",))
def embedding_contrastive_sqrt_adam():
    def dist(diff):
        return tf.sqrt(tf.reduce_sum(tf.square(diff), axis=1), name="dist")

    opt = tf.compat.v1.train.AdamOptimizer(1e-3)
    loss, train, normal, trigger = contrastive_model(dist, opt, False, seed=73)
    desc = _CONTRASTIVE.format(m=MARGIN, expr="tf.sqrt(reduce_sum(square(diff), 1))", opt="Adam, ref variables")
    return Built(loss, train, normal, trigger, desc)


@register("embedding_contrastive_pow_half_rmsprop", ("GF004",))
def embedding_contrastive_pow_half_rmsprop():
    def dist(diff):
        return tf.pow(tf.reduce_sum(tf.square(diff), axis=1), 0.5, name="dist")

    opt = tf.compat.v1.train.RMSPropOptimizer(1e-3)
    loss, train, normal, trigger = contrastive_model(dist, opt, True, seed=74)
    desc = _CONTRASTIVE.format(
        m=MARGIN, expr="tf.pow(reduce_sum(square(diff), 1), 0.5)", opt="RMSProp, resource variables"
    )
    return Built(loss, train, normal, trigger, desc)


# --- cosine classifier: x / norm(x) ----------------------------------------

N_CLASSES = 4
SCALE = 10.0


def cosine_classifier_model(normalize_fn, optimizer, use_resource, seed):
    x = placeholder("features", [BATCH, FEAT])
    labels = placeholder("labels", [BATCH], tf.int32)
    # linear projection without bias: a zero feature row embeds to exactly 0
    emb = dense(x, 8, "projection", use_bias=False, use_resource=use_resource)
    with tf.compat.v1.variable_scope("classifier"):
        prototypes = get_var("prototypes", [N_CLASSES, 8], use_resource=use_resource)
    with tf.name_scope("loss"):
        e = normalize_fn(emb)
        w = normalize_fn(prototypes)
        logits = SCALE * tf.matmul(e, w, transpose_b=True)
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        total = tf.reduce_mean(xent, name="total")
    train = optimizer.minimize(total, name="train")

    rs = np.random.RandomState(seed)
    feats = rs.randn(BATCH, FEAT).astype(np.float32)
    normal = {
        "inputs/features:0": feats,
        "inputs/labels:0": rs.randint(0, N_CLASSES, size=BATCH).astype(np.int32),
    }
    ft = feats.copy()
    ft[4] = 0.0  # zero-padded row
    trigger = dict(normal)
    trigger["inputs/features:0"] = ft
    return total, train, normal, trigger


@register("embedding_cosine_divide_by_norm_adam", ("GF004",), may_also_match=("GF002",))
def embedding_cosine_divide_by_norm_adam():
    def normalize(v):
        return v / tf.norm(v, axis=1, keepdims=True)

    opt = tf.compat.v1.train.AdamOptimizer(1e-3)
    loss, train, normal, trigger = cosine_classifier_model(normalize, opt, True, seed=75)
    desc = """Cosine-softmax classifier: bias-free linear projection, features
    and class prototypes normalised by x / tf.norm(x, axis=1, keepdims=True),
    logits = 10 * cos, sparse softmax CE; Adam, resource variables.
    Trigger: a zero-padded feature row embeds to the zero vector -> 0/0, NaN
    loss and gradients."""
    return Built(loss, train, normal, trigger, desc)
