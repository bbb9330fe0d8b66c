"""GF006 golden inputs."""
from tests.golden.common import graph


def masked_nll(tf):
    with graph(tf) as g:
        x = tf.compat.v1.placeholder(tf.float32, [5], name="x")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.constant_initializer(1.0), use_resource=False)
        p = tf.multiply(x, w, name="p")
        mask = tf.compat.v1.placeholder(tf.float32, [5], name="mask")
        tf.identity(tf.reduce_sum(mask * -tf.math.log(p)), name="loss")
    return g.as_graph_def()


CASES = {"masked_nll": (masked_nll, {"losses": ["loss:0"]})}
