"""GF003 golden inputs."""
from tests.golden.common import graph


def entropy_where_log(tf):
    with graph(tf) as g:
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.constant_initializer(1.0), use_resource=False)
        p = tf.multiply(x, w, name="p")
        tf.identity(-tf.reduce_sum(tf.where(p > 0, p * tf.math.log(p), tf.zeros_like(p))), name="loss")
    return g.as_graph_def()


def where_log_no_gradient(tf):
    """The same term in a graph nothing differentiates (an evaluation graph): clean."""
    with graph(tf) as g:
        p = tf.compat.v1.placeholder(tf.float32, [4], name="p")
        tf.identity(-tf.reduce_sum(tf.where(p > 0, p * tf.math.log(p), tf.zeros_like(p))), name="loss")
    return g.as_graph_def()


def double_where_is_safe(tf):
    with graph(tf) as g:
        p = tf.compat.v1.placeholder(tf.float32, [4], name="p")
        safe = tf.where(p > 0, p, tf.ones_like(p))
        tf.identity(-tf.reduce_sum(tf.where(p > 0, p * tf.math.log(safe), tf.zeros_like(p))), name="loss")
    return g.as_graph_def()


def where_sqrt_sgd(tf):
    with graph(tf) as g:
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.constant_initializer(1.5), use_resource=False)
        d = w * x
        loss = tf.reduce_sum(tf.where(d > 0, tf.sqrt(d), tf.zeros_like(d)), name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return g.as_graph_def()


CASES = {
    "entropy_where_log": (entropy_where_log, {"losses": ["loss:0"]}),
    "where_log_no_gradient": (where_log_no_gradient, {}),
    "double_where_is_safe": (double_where_is_safe, {}),
    "where_sqrt_sgd": (where_sqrt_sgd, {}),
}
