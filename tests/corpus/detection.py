"""GF001: detection heads whose box-regression loss is a mean over the
positive anchors only.

An image batch with no positive anchor (all labels are background) makes the
selection empty; ``Mean`` of an empty tensor is 0/0 = NaN and the total loss
becomes NaN.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, placeholder, register

N_ANCHORS = 12  # 2 images x 6 anchors, flattened
N_FEATURES = 6
N_CLASSES = 3  # class 0 is background
HIDDEN = 16

_LABELS_NORMAL = np.array([0, 2, 0, 1, 0, 0, 1, 0, 0, 0, 2, 0], dtype=np.int32)


def _inputs():
    feats = placeholder("anchor_features", [N_ANCHORS, N_FEATURES])
    labels = placeholder("anchor_labels", [N_ANCHORS], tf.int32)
    boxes = placeholder("box_targets", [N_ANCHORS, 4])
    return feats, labels, boxes


def _feeds(seed: int):
    rs = np.random.RandomState(seed)
    feats = rs.randn(N_ANCHORS, N_FEATURES).astype(np.float32)
    boxes = (0.5 * rs.randn(N_ANCHORS, 4)).astype(np.float32)
    normal = {
        "inputs/anchor_features:0": feats,
        "inputs/anchor_labels:0": _LABELS_NORMAL.copy(),
        "inputs/box_targets:0": boxes,
    }
    trigger = dict(normal)
    trigger["inputs/anchor_labels:0"] = np.zeros(N_ANCHORS, dtype=np.int32)  # no positive anchor
    return normal, trigger


def _head(feats, use_resource):
    hidden = dense(feats, HIDDEN, "trunk", activation=tf.nn.relu, use_resource=use_resource)
    cls_logits = dense(hidden, N_CLASSES, "cls_head", use_resource=use_resource)
    box_pred = dense(hidden, 4, "box_head", use_resource=use_resource)
    return cls_logits, box_pred


def _smooth_l1(diff):
    """Per-element Huber / smooth-L1 (a harmless where: both branches are total)."""
    ad = tf.abs(diff)
    return tf.where(ad < 1.0, 0.5 * tf.square(ad), ad - 0.5)


def _cls_loss(labels, cls_logits):
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=cls_logits)
    return tf.reduce_mean(xent, name="cls_loss")


def _detection_model(reg_reduce, use_resource, optimizer, seed, global_step=False):
    feats, labels, boxes = _inputs()
    cls_logits, box_pred = _head(feats, use_resource)
    with tf.name_scope("loss"):
        cls_loss = _cls_loss(labels, cls_logits)
        positive = tf.greater(labels, 0, name="positive")
        reg_loss = reg_reduce(box_pred, boxes, positive)
        total = tf.add(cls_loss, reg_loss, name="total")
    if optimizer is None:
        train = None
    else:
        step = tf.compat.v1.train.get_or_create_global_step() if global_step else None
        train = optimizer.minimize(total, global_step=step, name="train")
    normal, trigger = _feeds(seed)
    return total, train, normal, trigger


def _reg_boolean_mask_mean(box_pred, boxes, positive):
    pos_pred = tf.boolean_mask(box_pred, positive, name="pos_pred")
    pos_target = tf.boolean_mask(boxes, positive, name="pos_target")
    per_anchor = tf.reduce_sum(_smooth_l1(pos_pred - pos_target), axis=1)
    return tf.reduce_mean(per_anchor, name="reg_loss")


def _reg_where_gather_nd_mean(box_pred, boxes, positive):
    idx = tf.where(positive)  # [n_pos, 1] int64
    pos_pred = tf.gather_nd(box_pred, idx, name="pos_pred")
    pos_target = tf.gather_nd(boxes, idx, name="pos_target")
    per_anchor = tf.reduce_sum(_smooth_l1(pos_pred - pos_target), axis=1)
    return tf.reduce_mean(per_anchor, name="reg_loss")


def _reg_sum_over_size(box_pred, boxes, positive):
    pos_pred = tf.boolean_mask(box_pred, positive, name="pos_pred")
    pos_target = tf.boolean_mask(boxes, positive, name="pos_target")
    per_anchor = tf.reduce_sum(_smooth_l1(pos_pred - pos_target), axis=1)
    count = tf.cast(tf.size(per_anchor), tf.float32)
    return tf.math.truediv(tf.reduce_sum(per_anchor), count, name="reg_loss")


_DESC = """Anchor-based detection head: a 2-layer MLP over {n} anchors gives class
logits (mean sparse softmax CE over all anchors, safe) and box deltas; the
smooth-L1 box loss is {how} over the positive anchors (label > 0), {opt}.
Trigger: every anchor is background, so the selection is empty and the
reduction is 0/0 = NaN (loss NaN; gradients stay finite)."""


@register("detection_boolean_mask_momentum", ("GF001",))
def detection_boolean_mask_momentum():
    opt = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9)
    loss, train, normal, trigger = _detection_model(_reg_boolean_mask_mean, True, opt, seed=11)
    desc = _DESC.format(n=N_ANCHORS, how="reduce_mean(boolean_mask(...))", opt="Momentum, resource variables")
    return Built(loss, train, normal, trigger, desc)


@register("detection_boolean_mask_adam", ("GF001",))
def detection_boolean_mask_adam():
    opt = tf.compat.v1.train.AdamOptimizer(1e-3)
    loss, train, normal, trigger = _detection_model(_reg_boolean_mask_mean, False, opt, seed=12, global_step=True)
    desc = _DESC.format(
        n=N_ANCHORS,
        how="reduce_mean(boolean_mask(...))",
        opt="Adam with a global_step increment, ref variables (VariableV2)",
    )
    return Built(loss, train, normal, trigger, desc)


@register("detection_boolean_mask_sgd", ("GF001",))
def detection_boolean_mask_sgd():
    opt = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    loss, train, normal, trigger = _detection_model(_reg_boolean_mask_mean, True, opt, seed=13)
    desc = _DESC.format(n=N_ANCHORS, how="reduce_mean(boolean_mask(...))", opt="GradientDescent, resource variables")
    return Built(loss, train, normal, trigger, desc)


@register("detection_where_gather_nd_rmsprop", ("GF001",))
def detection_where_gather_nd_rmsprop():
    opt = tf.compat.v1.train.RMSPropOptimizer(1e-3)
    loss, train, normal, trigger = _detection_model(_reg_where_gather_nd_mean, False, opt, seed=14)
    desc = _DESC.format(
        n=N_ANCHORS,
        how="reduce_mean(gather_nd(x, where(positive)))",
        opt="RMSProp, ref variables (VariableV2)",
    )
    return Built(loss, train, normal, trigger, desc)


@register("detection_sum_over_size_adagrad", ("GF001",), may_also_match=("GF002",))
def detection_sum_over_size_adagrad():
    opt = tf.compat.v1.train.AdagradOptimizer(0.1)
    loss, train, normal, trigger = _detection_model(_reg_sum_over_size, True, opt, seed=15)
    desc = _DESC.format(
        n=N_ANCHORS,
        how="reduce_sum(bm) / cast(size(bm), float32) (the Sum/Size pair of a mean)",
        opt="Adagrad, resource variables",
    )
    return Built(loss, train, normal, trigger, desc)


@register("detection_boolean_mask_eval", ("GF001",))
def detection_boolean_mask_eval():
    loss, train, normal, trigger = _detection_model(_reg_boolean_mask_mean, True, None, seed=16)
    desc = _DESC.format(
        n=N_ANCHORS,
        how="reduce_mean(boolean_mask(...))",
        opt="forward-only evaluation graph (no optimizer, train_op None)",
    )
    return Built(loss, train, normal, trigger, desc)


@register("detection_ohem_gather_momentum", ("GF001",))
def detection_ohem_gather_momentum():
    """Online hard example mining: mean CE over anchors above a fed threshold."""
    feats, labels, boxes = _inputs()
    threshold = placeholder("ohem_threshold", [])
    cls_logits, box_pred = _head(feats, False)
    with tf.name_scope("loss"):
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=cls_logits)
        hard = tf.where(xent > threshold)[:, 0]
        hard_xent = tf.reduce_mean(tf.gather(xent, hard), name="hard_cls_loss")
        box_l1 = tf.reduce_mean(tf.reduce_sum(_smooth_l1(box_pred - boxes), axis=1), name="box_loss")
        total = tf.add(hard_xent, box_l1, name="total")
    step = tf.compat.v1.train.get_or_create_global_step()
    lr = tf.compat.v1.train.exponential_decay(0.01, step, 1000, 0.9, name="learning_rate")
    train = tf.compat.v1.train.MomentumOptimizer(lr, 0.9).minimize(total, global_step=step, name="train")
    normal, trigger = _feeds(17)
    normal["inputs/ohem_threshold:0"] = np.array(0.5, dtype=np.float32)
    trigger = dict(normal)
    trigger["inputs/ohem_threshold:0"] = np.array(100.0, dtype=np.float32)  # late in training: no hard example left
    desc = """Detection head with online hard example mining: per-anchor
    classification CE, mean over tf.gather(xent, where(xent > threshold)) (a
    gather by a dynamic index) plus a dense box loss; Momentum with an
    exponentially decayed learning rate and a global_step, ref variables.
    Trigger: the fed threshold is above every anchor's loss, the gathered
    set is empty and its mean is NaN."""
    return Built(total, train, normal, trigger, desc)
