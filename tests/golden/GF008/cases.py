"""GF008 golden inputs."""
from tests.golden.common import graph


def manual_softmax(tf):
    with graph(tf) as g:
        z = tf.compat.v1.placeholder(tf.float32, [2, 3], name="logits")
        e = tf.exp(z)
        tf.identity(tf.reduce_sum(e / tf.reduce_sum(e, axis=1, keepdims=True)), name="loss")
    return g.as_graph_def()


def stable_softmax_is_safe(tf):
    with graph(tf) as g:
        z = tf.compat.v1.placeholder(tf.float32, [2, 3], name="logits")
        e = tf.exp(z - tf.reduce_max(z, axis=1, keepdims=True))
        tf.identity(tf.reduce_sum(e / tf.reduce_sum(e, axis=1, keepdims=True)), name="loss")
    return g.as_graph_def()


CASES = {
    "manual_softmax": (manual_softmax, {}),
    "manual_softmax_unsafe_fix": (manual_softmax, {"unsafe_fixes": True}),
    "stable_softmax_is_safe": (stable_softmax_is_safe, {}),
}
