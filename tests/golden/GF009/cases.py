"""GF009 golden inputs."""
from tests.golden.common import graph


def poisson_log_rate(tf):
    with graph(tf) as g:
        rate = tf.nn.relu(tf.compat.v1.placeholder(tf.float32, [4], name="x"))
        counts = tf.compat.v1.placeholder(tf.float32, [4], name="counts")
        tf.identity(tf.reduce_sum(rate - counts * tf.math.log(rate)), name="loss")
    return g.as_graph_def()


CASES = {
    "poisson_log_rate": (poisson_log_rate, {}),
    "poisson_log_rate_unsafe_fix": (poisson_log_rate, {"unsafe_fixes": True}),
}
