"""Builders of the GF001 golden inputs (regenerated with pytest --update-golden)."""
import numpy as np

from tests.golden.common import graph


def boolean_mask_forward(tf):
    with graph(tf) as g:
        x = tf.compat.v1.placeholder(tf.float32, [6], name="x")
        m = tf.compat.v1.placeholder(tf.bool, [6], name="m")
        tf.identity(tf.reduce_mean(tf.boolean_mask(x, m)), name="loss")
    return g.as_graph_def()


def dynamic_partition_sgd(tf):
    with graph(tf) as g:
        x = tf.compat.v1.placeholder(tf.float32, [4, 3], name="x")
        task = tf.compat.v1.placeholder(tf.int32, [4], name="task")
        w = tf.compat.v1.get_variable("w", [3, 1], initializer=tf.constant_initializer(np.arange(3) * 0.1),
                                      use_resource=False)
        per_row = tf.squeeze(tf.matmul(x, w), 1)
        parts = tf.dynamic_partition(per_row, task, 2)
        loss = tf.identity(tf.reduce_mean(tf.square(parts[0])) + tf.reduce_mean(tf.square(parts[1])), name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return g.as_graph_def()


def already_guarded(tf):
    with graph(tf) as g:
        x = tf.compat.v1.placeholder(tf.float32, [6], name="x")
        m = tf.compat.v1.placeholder(tf.bool, [6], name="m")
        bm = tf.boolean_mask(x, m)
        tf.identity(tf.compat.v1.cond(tf.size(bm) > 0, lambda: tf.reduce_mean(bm), lambda: 0.0), name="loss")
    return g.as_graph_def()


CASES = {
    "boolean_mask_forward": (boolean_mask_forward, {}),
    "boolean_mask_forward_where": (boolean_mask_forward, {"guard": "where"}),
    "dynamic_partition_sgd": (dynamic_partition_sgd, {}),
    "already_guarded": (already_guarded, {}),
}
