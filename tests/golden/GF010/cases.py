"""GF010 golden inputs."""
from tests.golden.common import graph


def where_zero_mean(tf):
    with graph(tf) as g:
        per_token = tf.compat.v1.placeholder(tf.float32, [2, 5], name="per_token")
        lengths = tf.compat.v1.placeholder(tf.int32, [2], name="lengths")
        valid = tf.sequence_mask(lengths, 5)
        # "average only over valid tokens" -- but the mean counts the zeros too
        tf.identity(tf.reduce_mean(tf.where(valid, per_token, tf.zeros_like(per_token))), name="loss")
    return g.as_graph_def()


def sum_over_count_is_safe(tf):
    with graph(tf) as g:
        per_token = tf.compat.v1.placeholder(tf.float32, [2, 5], name="per_token")
        lengths = tf.compat.v1.placeholder(tf.int32, [2], name="lengths")
        valid = tf.sequence_mask(lengths, 5)
        total = tf.reduce_sum(tf.where(valid, per_token, tf.zeros_like(per_token)))
        count = tf.reduce_sum(tf.cast(valid, tf.float32))
        tf.identity(tf.math.divide_no_nan(total, count), name="loss")
    return g.as_graph_def()


CASES = {
    "where_zero_mean": (where_zero_mean, {}),
    "where_zero_mean_unsafe_fix": (where_zero_mean, {"unsafe_fixes": True}),
    "sum_over_count_is_safe": (sum_over_count_is_safe, {}),
}
