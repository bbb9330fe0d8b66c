"""GF004 golden inputs."""
from tests.golden.common import graph


def triplet_norm(tf):
    with graph(tf) as g:
        x = tf.compat.v1.placeholder(tf.float32, [3, 4], name="anchor_in")
        w = tf.compat.v1.get_variable("w", [4, 4], initializer=tf.constant_initializer(0.5), use_resource=False)
        a = tf.matmul(x, w, name="anchor")
        p = tf.compat.v1.placeholder(tf.float32, [3, 4], name="positive")
        tf.identity(tf.reduce_mean(tf.norm(a - p, axis=1)), name="loss")
    return g.as_graph_def()


def eps_norm_is_safe(tf):
    with graph(tf) as g:
        a = tf.compat.v1.placeholder(tf.float32, [3, 4], name="anchor")
        tf.identity(tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(a), 1) + 1e-12)), name="loss")
    return g.as_graph_def()


CASES = {
    "triplet_norm": (triplet_norm, {"losses": ["loss:0"]}),
    "eps_norm_is_safe": (eps_norm_is_safe, {}),
}
