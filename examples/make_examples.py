"""Build the example graphs shipped in examples/ (run: python examples/make_examples.py).

detection.pb   a small detection head trained with Momentum.  Its box loss is
               the mean over the *positive* anchors (tf.boolean_mask), which is
               NaN on a batch without positives, and the learned loss weight
               turns that NaN into NaN gradients for every variable.
clean.pb       the same model with tf.compat.v1.losses weighted losses: no hazard.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

tf.compat.v1.disable_eager_execution()
tf.compat.v1.disable_control_flow_v2()

ANCHORS, FEATURES = 16, 8


def _head(features):
    init = tf.compat.v1.glorot_uniform_initializer
    w1 = tf.compat.v1.get_variable("head/w1", [FEATURES, 16], initializer=init(seed=1))
    b1 = tf.compat.v1.get_variable("head/b1", [16], initializer=tf.compat.v1.zeros_initializer())
    hidden = tf.nn.relu(tf.matmul(features, w1) + b1)
    w_cls = tf.compat.v1.get_variable("head/w_cls", [16, 1], initializer=init(seed=2))
    w_box = tf.compat.v1.get_variable("head/w_box", [16, 4], initializer=init(seed=3))
    return tf.squeeze(tf.matmul(hidden, w_cls), 1), tf.matmul(hidden, w_box)


def detection(clean: bool = False) -> tf.compat.v1.GraphDef:
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(0)
        features = tf.compat.v1.placeholder(tf.float32, [ANCHORS, FEATURES], name="features")
        labels = tf.compat.v1.placeholder(tf.float32, [ANCHORS], name="labels")  # 1 = positive anchor
        boxes = tf.compat.v1.placeholder(tf.float32, [ANCHORS, 4], name="boxes")
        logits, box_pred = _head(features)
        with tf.name_scope("loss"):
            positive = labels > 0
            if clean:
                cls = tf.compat.v1.losses.sigmoid_cross_entropy(labels, logits)
                box = tf.compat.v1.losses.huber_loss(boxes, box_pred, weights=tf.expand_dims(labels, 1))
                total = tf.add(cls, box, name="total")
            else:
                cls = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
                per_anchor = tf.reduce_sum(tf.abs(box_pred - boxes), axis=1)
                box = tf.reduce_mean(tf.boolean_mask(per_anchor, positive))  # NaN without positives
                box_weight = tf.compat.v1.get_variable("box_weight", [], initializer=tf.compat.v1.ones_initializer())
                total = tf.add(cls, box_weight * box, name="total")
        tf.compat.v1.train.MomentumOptimizer(0.01, 0.9).minimize(total, name="train")
        tf.compat.v1.global_variables_initializer()
    return g.as_graph_def()


def main(out_dir: str) -> None:
    for name, gd in (("detection.pb", detection()), ("clean.pb", detection(clean=True))):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(gd.SerializeToString(deterministic=True))
        print(f"wrote {os.path.join(out_dir, name)} ({len(gd.node)} nodes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
