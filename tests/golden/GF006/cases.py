"""GF006 golden inputs."""
from tests.golden.common import graph


def masked_nll(tf):
    with graph(tf) as g:
        p = tf.compat.v1.placeholder(tf.float32, [5], name="p")
        mask = tf.compat.v1.placeholder(tf.float32, [5], name="mask")
        tf.identity(tf.reduce_sum(mask * -tf.math.log(p)), name="loss")
    return g.as_graph_def()


CASES = {"masked_nll": (masked_nll, {})}
