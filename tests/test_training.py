"""Rewritten training graphs keep training (issue #5): every common TF1
optimizer, ref and resource variables, global_step, var_list, gradient
clipping, two losses with two train ops, loss scaling.

Each graph is a small detection head whose box loss is the mean over a
``tf.boolean_mask`` of the positive anchors (GF001): NaN on a batch without
positives, and through the learned loss weight ``box_weight`` the NaN reaches
the gradients and the optimizer writes it into the variables.  For each
configuration:

1. original and fixed graph trained on the same *normal* batches end with
   bit-for-bit identical variables (every variable: weights, optimizer slots,
   ``beta*_power``, ``global_step``);
2. trained on *alternating* normal / no-positive batches, the original is
   poisoned with NaN, the fixed graph stays finite;
3. ...and the fixed graph trains exactly like the same model written with the
   guard by hand in the source (``tf.cond(tf.size(sel) > 0, mean, 0)``),
   bit-for-bit, over those alternating batches.
"""
import numpy as np
import pytest

from tests.trainutil import assert_finite, assert_identical, assert_poisoned, rewrite, train

B, F, H = 8, 4, 6
STEPS = 6


def _optimizer(tf, name):
    t = tf.compat.v1.train
    return {
        "sgd": lambda: t.GradientDescentOptimizer(0.1),
        "momentum": lambda: t.MomentumOptimizer(0.05, 0.9),
        "nesterov": lambda: t.MomentumOptimizer(0.05, 0.9, use_nesterov=True),
        "adam": lambda: t.AdamOptimizer(0.01),
        "rmsprop": lambda: t.RMSPropOptimizer(0.01),
        "rmsprop_momentum_centered": lambda: t.RMSPropOptimizer(0.01, momentum=0.9, centered=True),
        "adagrad": lambda: t.AdagradOptimizer(0.1),
        "adadelta": lambda: t.AdadeltaOptimizer(1.0),
        "ftrl": lambda: t.FtrlOptimizer(0.1, l1_regularization_strength=0.01, l2_regularization_strength=0.01),
    }[name]()


def build(tf, opt="adam", resource=False, variant="plain", hand_guard=False):
    """GraphDef of the detection head; returns (graph_def, train op names)."""
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [B, F], name="x")
        labels = tf.compat.v1.placeholder(tf.float32, [B], name="labels")
        target = tf.compat.v1.placeholder(tf.float32, [B], name="target")

        def var(name, shape, seed):
            init = tf.compat.v1.glorot_uniform_initializer(seed=seed) if seed else tf.compat.v1.ones_initializer()
            return tf.compat.v1.get_variable(name, shape, initializer=init, use_resource=resource)

        w1, b1 = var("head/w1", [F, H], 1), var("head/b1", [H], 2)
        w_cls, w_box = var("head/w_cls", [H, 1], 3), var("head/w_box", [H, 1], 4)
        box_weight = var("loss/box_weight", [], 0)
        hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
        logits = tf.squeeze(tf.matmul(hidden, w_cls), 1)
        box_pred = tf.squeeze(tf.matmul(hidden, w_box), 1)
        with tf.name_scope("loss"):
            cls = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
            positive = tf.boolean_mask(tf.abs(box_pred - target), labels > 0)
            if hand_guard:
                box = tf.compat.v1.cond(tf.size(positive, out_type=tf.int64) > 0,
                                        lambda: tf.reduce_mean(positive), lambda: tf.constant(0.0))
            else:
                box = tf.reduce_mean(positive)  # NaN on a batch without positives
            loss = tf.add(cls, box_weight * box, name="total")
        trains = ["train"]
        if variant == "plain":
            _optimizer(tf, opt).minimize(loss, name="train")
        elif variant == "global_step":
            step = tf.compat.v1.train.get_or_create_global_step()
            _optimizer(tf, opt).minimize(loss, global_step=step, name="train")
        elif variant == "var_list":  # head/b1 and head/w_cls stay frozen
            _optimizer(tf, opt).minimize(loss, var_list=[w1, w_box, box_weight], name="train")
        elif variant == "clip":
            o = _optimizer(tf, opt)
            grads, variables = zip(*o.compute_gradients(loss))
            grads, _ = tf.clip_by_global_norm(grads, 0.5)
            o.apply_gradients(zip(grads, variables), name="train")
        elif variant == "two_losses":  # a second loss on the same masked term, its own optimizer
            loss2 = tf.add(0.5 * cls, 2.0 * box_weight * box, name="loss/total2")
            _optimizer(tf, opt).minimize(loss, var_list=[w1, b1, w_cls], name="train")
            tf.compat.v1.train.GradientDescentOptimizer(0.05).minimize(loss2, var_list=[w_box, box_weight],
                                                                       name="train2")
            trains.append("train2")
        elif variant == "loss_scale":
            scale = 1024.0
            o = _optimizer(tf, opt)
            gv = o.compute_gradients(loss * scale)
            o.apply_gradients([(gr / scale, v) for gr, v in gv], name="train")
        else:
            raise ValueError(variant)
        tf.compat.v1.global_variables_initializer()
    return g.as_graph_def(), trains


def batches(n=STEPS, alternate=False):
    rs = np.random.RandomState(11)
    out = []
    for i in range(n):
        labels = (rs.rand(B) > 0.5).astype(np.float32)
        labels[i % B] = 1.0
        if alternate and i % 2 == 1:
            labels[:] = 0.0  # no positive anchor: the masked mean is over nothing
        out.append({"x:0": rs.randn(B, F).astype(np.float32), "labels:0": labels,
                    "target:0": rs.randn(B).astype(np.float32)})
    return out


def check_trains(tf, opt, resource, variant):
    original, trains = build(tf, opt, resource, variant)
    fixed = rewrite(original)

    normal = batches()
    assert_identical(train(tf, original, trains, normal), train(tf, fixed, trains, normal))

    mixed = batches(alternate=True)
    assert_poisoned(train(tf, original, trains, mixed))
    got = train(tf, fixed, trains, mixed)
    assert_finite(got)

    by_hand, _ = build(tf, opt, resource, variant, hand_guard=True)
    assert_identical(got, train(tf, by_hand, trains, mixed))


OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "rmsprop", "rmsprop_momentum_centered", "adagrad", "adadelta",
              "ftrl"]


@pytest.mark.parametrize("resource", [False, True], ids=["ref", "resource"])
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_optimizer(tf, opt, resource):
    check_trains(tf, opt, resource, "plain")


@pytest.mark.parametrize("resource", [False, True], ids=["ref", "resource"])
@pytest.mark.parametrize("variant,opt", [("global_step", "adam"), ("var_list", "momentum"), ("clip", "adam"),
                                         ("two_losses", "adam"), ("loss_scale", "momentum")])
def test_variant(tf, variant, opt, resource):
    check_trains(tf, opt, resource, variant)
