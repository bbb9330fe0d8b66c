"""GF005 golden inputs."""
from tests.golden.common import graph


def log_softmax_ce(tf):
    with graph(tf) as g:
        z = tf.compat.v1.placeholder(tf.float32, [2, 3], name="logits")
        y = tf.compat.v1.placeholder(tf.float32, [2, 3], name="labels")
        tf.identity(-tf.reduce_sum(y * tf.math.log(tf.nn.softmax(z))), name="loss")
    return g.as_graph_def()


def gan_log_sigmoid(tf):
    with graph(tf) as g:
        real = tf.compat.v1.placeholder(tf.float32, [4], name="d_real")
        fake = tf.compat.v1.placeholder(tf.float32, [4], name="d_fake")
        tf.identity(-tf.reduce_mean(tf.math.log(tf.sigmoid(real)) + tf.math.log(1.0 - tf.sigmoid(fake))),
                    name="loss")
    return g.as_graph_def()


def log_softmax_op_is_safe(tf):
    with graph(tf) as g:
        z = tf.compat.v1.placeholder(tf.float32, [2, 3], name="logits")
        y = tf.compat.v1.placeholder(tf.float32, [2, 3], name="labels")
        tf.identity(-tf.reduce_sum(y * tf.nn.log_softmax(z)), name="loss")
    return g.as_graph_def()


CASES = {
    "log_softmax_ce": (log_softmax_ce, {}),
    "gan_log_sigmoid": (gan_log_sigmoid, {}),
    "log_softmax_op_is_safe": (log_softmax_op_is_safe, {}),
}
