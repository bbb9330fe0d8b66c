"""GF002 golden inputs."""
from tests.golden.common import graph


def masked_token_mean(tf):
    with graph(tf) as g:
        xent = tf.compat.v1.placeholder(tf.float32, [2, 5], name="xent")
        lengths = tf.compat.v1.placeholder(tf.int32, [2], name="lengths")
        mask = tf.cast(tf.sequence_mask(lengths, 5), tf.float32)
        tf.identity(tf.reduce_sum(xent * mask) / tf.reduce_sum(mask), name="loss")
    return g.as_graph_def()


def max_count_is_safe(tf):
    with graph(tf) as g:
        xent = tf.compat.v1.placeholder(tf.float32, [2, 5], name="xent")
        mask = tf.compat.v1.placeholder(tf.float32, [2, 5], name="mask")
        tf.identity(tf.reduce_sum(xent * mask) / tf.maximum(tf.reduce_sum(mask), 1.0), name="loss")
    return g.as_graph_def()


CASES = {
    "masked_token_mean": (masked_token_mean, {}),
    "max_count_is_safe": (max_count_is_safe, {}),
}
