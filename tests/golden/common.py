import contextlib


@contextlib.contextmanager
def graph(tf):
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(0)
        yield g
