"""GF007 golden inputs."""
from tests.golden.common import graph


def eval_metric_term(tf):
    with graph(tf) as g:
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.constant_initializer(2.0), use_resource=False)
        metric = tf.reduce_mean(tf.abs(w * x), name="metric")
        loss = tf.add(tf.reduce_mean(tf.square(w * x - 1.0)), 0.1 * metric, name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return g.as_graph_def()


CASES = {"eval_metric_term": (eval_metric_term, {"options": {"stop_gradient": ["metric"]}})}
