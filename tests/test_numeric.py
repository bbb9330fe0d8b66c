"""The numeric abstract interpretation: its op table against TensorFlow's
registry, its soundness against values TensorFlow really computes, and the
float semantics and relational facts the rules rely on."""
import numpy as np
import pytest

from graphfix.analysis import Facts
from graphfix.analysis.absval import ASSUMED, NO, REACHABLE
from graphfix.analysis.numeric import Numeric
from graphfix.analysis.transfer import TRANSFER
from graphfix.core.ir import GraphIR


def _numeric(g):
    return Numeric(GraphIR(g.as_graph_def()))


def _v(num, t):
    return num.value((t.op.name, t.value_index))


def test_every_op_in_the_table_is_a_registered_tensorflow_op(tf):
    from tensorflow.python.framework import op_def_registry

    missing = sorted(op for op in TRANSFER if op_def_registry.get(op) is None)
    assert not missing, missing


def test_an_unknown_op_is_top_and_never_a_crash(tf):
    gd = tf.compat.v1.GraphDef()
    a = gd.node.add(name="a", op="Placeholder")
    a.attr["dtype"].type = 1
    b = gd.node.add(name="b", op="SomeCustomOp", input=["a"])
    b.attr["T"].type = 1
    gd.node.add(name="c", op="Log", input=["b"]).attr["T"].type = 1
    num = Numeric(GraphIR(gd))
    v = num.value(("b", 0))
    assert v.lo == -np.inf and v.hi == np.inf and not v.nan and v.zero == ASSUMED
    assert num.value(("b", 3)).lo == -np.inf  # an output index the op may not have


def _soundness_graph(tf):
    x = tf.compat.v1.placeholder(tf.float32, [3, 4], name="x")
    m = tf.compat.v1.placeholder(tf.bool, [3, 4], name="m")
    n = tf.compat.v1.placeholder(tf.int32, [3], name="n")
    outs = []
    e = tf.exp(x - tf.reduce_max(x, axis=1, keepdims=True))
    s = tf.reduce_sum(e, axis=1)
    outs += [e, s, e / tf.expand_dims(s, 1), tf.math.log(s)]
    mask = tf.cast(m, tf.float32)
    outs += [mask, tf.reduce_sum(mask), tf.maximum(tf.reduce_sum(mask), 1.0), tf.reduce_sum(x * mask, 0)]
    outs += [tf.nn.relu(x), tf.sigmoid(x), 1.0 - tf.sigmoid(x), tf.tanh(x), tf.nn.softplus(x), tf.abs(x),
             tf.square(x), tf.sqrt(tf.square(x)), tf.exp(tf.clip_by_value(x, -100.0, 50.0)),
             tf.floor(tf.random.uniform([3, 4]) + 0.5), tf.where(x > 0, x, tf.ones_like(x)),
             tf.where(x >= 0, -x, x), tf.reduce_mean(tf.boolean_mask(x, m)), tf.boolean_mask(x, m),
             tf.cast(tf.sequence_mask(n, 4), tf.float32), tf.nn.softmax(x), tf.nn.log_softmax(x),
             tf.math.log1p(tf.exp(-tf.abs(x))), tf.reduce_prod(tf.sigmoid(x)), tf.norm(x, axis=1),
             tf.math.divide_no_nan(tf.reduce_sum(x), tf.reduce_sum(mask)), tf.pow(tf.abs(x), 0.5),
             tf.minimum(x, 3.0), tf.nn.relu6(x * 3.0), tf.cast(x, tf.int32), tf.reduce_max(x, 1),
             tf.one_hot(n, 4), tf.gather(x, n % 3), tf.concat([x, tf.nn.relu(x)], 0),
             tf.reduce_max(tf.nn.softmax(x), 1), tf.reduce_max(tf.nn.softmax(x), 0),
             tf.reduce_sum(tf.nn.softmax(x), 1), tf.reduce_sum(tf.nn.softmax(x), 0),
             tf.cast(tf.stack([0, 0, tf.shape(x)[0], tf.shape(x)[1]]), tf.float32)[2],
             tf.stack([x[0], tf.zeros([4])])[-1], tf.stack([x[0], tf.zeros([4])])[0, 1:],
             tf.nn.softmax(tf.sigmoid(x)), tf.nn.softmax(30.0 * tf.tanh(x)), tf.nn.softmax(50.0 * tf.tanh(x))]
    return x, m, n, outs


@pytest.mark.parametrize("scale", [0.5, 3.0, 40.0, 150.0])
def test_intervals_hold_the_values_tensorflow_computes(tf, scale):
    g = tf.Graph()
    with g.as_default():
        x, m, n, outs = _soundness_graph(tf)
    num = _numeric(g)
    rs = np.random.RandomState(int(scale * 10))
    with tf.compat.v1.Session(graph=g) as s:
        for trial in range(6):
            feeds = {x: (rs.randn(3, 4) * scale).astype(np.float32), m: rs.rand(3, 4) < [0.5, 0.0, 0.9][trial % 3],
                     n: rs.randint(0, 5, 3).astype(np.int32)}
            if trial == 5:
                feeds[x][0] = 0.0
                feeds[m][:] = False
            for t, val in zip(outs, s.run(outs, feeds)):
                v = _v(num, t)
                val = np.asarray(val, np.float64)
                fin = val[~np.isnan(val)]
                assert np.all(fin >= v.lo) and np.all(fin <= v.hi), (t.name, v, fin.min(), fin.max())
                if val.size == 0:
                    assert v.empty, (t.name, v)
                if np.any(fin == 0):
                    assert v.zero != NO, (t.name, v, val)
                if np.any(np.isnan(val)) and t.op.type in ("Mean", "RealDiv"):
                    assert v.nan, (t.name, v)


def test_float_semantics(tf):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        absorbed = tf.constant(1e-10) + tf.constant(1.0)
        under = tf.exp(tf.clip_by_value(x, -100.0, 0.0))
        free = tf.exp(x)
        saturated = tf.constant(1.0) - tf.sigmoid(x)
        h = tf.compat.v1.placeholder(tf.float16, [4], name="h")
        half = tf.exp(tf.clip_by_value(h, -1.0, 12.0))
        shifted = tf.reduce_sum(tf.exp(x - tf.reduce_max(x)))
        neg_abs = tf.exp(tf.where(x >= tf.zeros_like(x), -x, x))
    num = _numeric(g)
    a = _v(num, absorbed)
    assert a.lo == a.hi == 1.0  # 1 + 1e-10 == 1 in float32
    assert _v(num, under).zero == REACHABLE and _v(num, under).hi == 1.0  # exp flushes to exactly 0
    assert _v(num, free).zero == ASSUMED  # only if the fed value is itself extreme
    assert _v(num, saturated).zero == REACHABLE  # sigmoid reaches exactly 1
    assert _v(num, half).inf  # float16 exp overflows above ~11.1
    assert _v(num, shifted).lo == 1.0 and _v(num, shifted).positive
    assert _v(num, neg_abs).hi == 1.0


def _softmax_reduced(tf, reduce, row_axis, seq_axis, **row_kw):
    """The values of ``reduce`` over a softmax of [B, 7] logits: by row (its
    class axis, ``row_axis``), over the batch (axis 0; every row can starve a
    class), over everything, and over the class axis ``seq_axis`` of a
    [B, 1, 5] sequence."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 5], name="x")
        w = tf.compat.v1.get_variable("w", [5, 7], use_resource=True)
        rows = tf.nn.softmax(tf.matmul(x, w))
        made = {"by_row": reduce(rows, axis=row_axis, **row_kw),
                "steps": reduce(tf.nn.softmax(tf.reshape(x, [-1, 1, 5])), axis=seq_axis),
                "over_batch": reduce(rows, axis=0), "everything": reduce(rows)}
    num = _numeric(g)
    return {k: _v(num, t) for k, t in made.items()}


def test_the_largest_probability_of_a_softmax_row_is_positive(tf):
    v = _softmax_reduced(tf, tf.reduce_max, 1, -1)
    assert v["by_row"].positive and v["by_row"].lo == 0.5 / 7
    assert v["steps"].positive and v["steps"].lo == 0.5 / 5
    assert v["everything"].positive
    assert v["over_batch"].reaches_zero()


def test_the_sum_of_a_softmax_row_is_positive(tf):
    # by row with keepdims: Keras' categorical_crossentropy renormalises by it
    v = _softmax_reduced(tf, tf.reduce_sum, -1, 2, keepdims=True)
    assert v["by_row"].positive and v["by_row"].lo == 0.5 / 7
    assert v["steps"].positive and v["steps"].lo == 0.5 / 5
    assert v["over_batch"].reaches_zero()


def test_a_slice_that_picks_one_packed_element_has_its_value(tf):
    g = tf.Graph()
    with g.as_default():
        img = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3], name="img")
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        window = tf.cast(tf.stack([0, 0, tf.shape(img)[1], tf.shape(img)[2]]), tf.float32)
        height = window[2] - window[0]  # the object detection API's change_coordinate_frame
        corner, far, last, both = window[0], window[2], window[-1], window[1:3]
        relu_row = tf.stack([tf.nn.relu(x), tf.ones_like(x)])[0]
    num = _numeric(g)
    assert _v(num, last).positive and _v(num, far).positive
    assert not _v(num, height).reaches_zero()  # h - 0: 0 only if a fed image is empty
    assert _v(num, corner).lo == _v(num, corner).hi == 0.0
    assert _v(num, both).reaches_zero()  # a slice of two elements joins them
    assert _v(num, relu_row).reaches_zero()


def test_a_softmax_of_bounded_logits_is_positive(tf):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 5], name="x")
        h = tf.compat.v1.placeholder(tf.float16, [None, 5], name="h")
        of_sigmoid = tf.nn.softmax(tf.sigmoid(x))  # inputs in [0, 1]: every entry >= e^-1 / 5
        of_tanh = tf.nn.softmax(40.0 * tf.tanh(x))  # a gap of 80: exp(-80) / 5 is still normal in float32
        too_wide = tf.nn.softmax(50.0 * tf.tanh(x))  # a gap of 100: exp(-100) is flushed to 0
        free = tf.nn.softmax(x)
        half = tf.nn.softmax(2.0 * tf.tanh(h))  # float16: exp(-4) / 5 is normal; exp(-16) is not
        half_wide = tf.nn.softmax(8.0 * tf.tanh(h))
    num = _numeric(g)
    assert _v(num, of_sigmoid).positive and _v(num, of_sigmoid).lo > 0.03
    assert _v(num, of_tanh).positive and _v(num, half).positive
    for t in (too_wide, free, half_wide):
        assert _v(num, t).reaches_zero(), t.name


def test_conditions_refine_values(tf):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        n = tf.compat.v1.placeholder(tf.float32, [], name="n")
        sel = tf.boolean_mask(x, x > 0)
        in_cond = tf.compat.v1.cond(tf.size(sel) > 0, lambda: tf.reduce_mean(tf.square(sel)), lambda: 0.0)
        outside = tf.where(tf.size(sel) > 0, tf.reduce_mean(sel), 0.0)
        safe_log_arg = tf.where(x > 0, x, tf.ones_like(x))
        not_zero = tf.where(tf.equal(n, 0.0), 1.0, n)
        size = tf.abs(n)
        eps_fill = size + tf.cast(tf.equal(size, 0.0), tf.float32) * 1e-6
    num = _numeric(g)
    assert _v(num, sel).empty and not _v(num, in_cond).nan and not _v(num, outside).nan
    assert _v(num, safe_log_arg).positive
    assert _v(num, not_zero).zero == NO
    assert _v(num, eps_fill).positive


def test_loop_heads_join_what_the_body_brings_back(tf):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")

        def body(i, acc):
            return i + 1, acc + tf.reduce_mean(tf.boolean_mask(x, x > tf.cast(i, tf.float32)))

        _, acc = tf.compat.v1.while_loop(lambda i, a: i < 3, body, [tf.constant(0), tf.constant(0.0)])
        out = tf.identity(acc, name="out")
    assert _v(_numeric(g), out).nan  # NaN born in the body reaches the loop's exit


def test_births_are_found_in_the_backward_graph(tf):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.constant_initializer(1.0), use_resource=False)
        loss = tf.reduce_sum(tf.sqrt(tf.nn.relu(x * w)), name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    ir = GraphIR(g.as_graph_def())
    births = Numeric(ir).births()
    grad = [b for b in births if b[0].startswith("gradients/")]
    assert any(ir.op(b[0]) == "SqrtGrad" for b in grad), births
    assert not any(b[0] == "Sqrt" for b in births)  # the forward value is a clean 0
    assert Facts(ir).on_gradient_path("Sqrt")


def test_zero_by_coincidence_is_not_exact(tf):
    """A difference of two continuous values nothing ties together is 0 only by
    coincidence; it is exact when the sides meet on a point they attain, compute
    the same function of the data, or are the same tensor."""
    from graphfix.analysis.absval import COINCIDENT

    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4, 3], name="x")
        y = tf.compat.v1.placeholder(tf.float32, [4, 3], name="y")
        t = tf.compat.v1.placeholder(tf.float32, [4, 2], name="t")
        w = tf.compat.v1.get_variable("w", [3, 2], use_resource=False)
        b = tf.compat.v1.get_variable("b", [2], initializer=tf.compat.v1.zeros_initializer(), use_resource=False)
        z = tf.matmul(x, w) + b
        linear = t - z  # a learned output against fed targets
        saturated = t - tf.tanh(z)  # tanh attains +-1, fed targets hold +-1
        labels = tf.cast(t > 0, tf.float32) - tf.sigmoid(z)  # both attain 0 and 1
        siamese = (tf.matmul(x, w) + b) - (tf.matmul(y, w) + b)  # the same item fed twice
        rows = tf.gather(z, [0]) - tf.gather(z, [1])  # two rows of one tensor
        same = z - z
        bias_free = tf.matmul(x, w)  # a zero-padded row of x gives 0
        loss = tf.reduce_sum(tf.square(linear)) + tf.reduce_sum(saturated + labels + siamese + rows + same)
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
    num = _numeric(g)
    assert _v(num, linear).zero == COINCIDENT and not _v(num, linear).exactly_zero()
    assert _v(num, linear).may_be_zero()  # still a possible 0 for rules that ask "may"
    assert _v(num, saturated).zero == ASSUMED
    assert _v(num, labels).zero == REACHABLE
    assert _v(num, siamese).zero == ASSUMED
    assert _v(num, rows).zero == ASSUMED
    assert _v(num, same).zero == REACHABLE
    assert _v(num, bias_free).exactly_zero()


def test_a_leaky_relu_gradient_is_zero_only_where_its_input_gradient_is(tf):
    """ReluGrad is 0 on the ReLU's whole negative side; LeakyReluGrad scales by
    alpha there, so an input gradient through a leaky ReLU is not exactly 0."""
    from graphfix.analysis.absval import COINCIDENT

    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4, 3], name="x")
        w = tf.compat.v1.get_variable("w", [3, 5], use_resource=False)
        v = tf.compat.v1.get_variable("v", [5, 1], use_resource=False)
        pre = tf.matmul(x, w)
        leaky = tf.gradients(tf.reduce_sum(tf.matmul(tf.nn.leaky_relu(pre, 0.2), v)), [x])[0]
        plain = tf.gradients(tf.reduce_sum(tf.matmul(tf.nn.relu(pre), v)), [x])[0]
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(tf.reduce_sum(leaky + plain))
    num = _numeric(g)
    assert _v(num, leaky).zero == COINCIDENT
    assert _v(num, plain).zero == REACHABLE


def test_relu_grad_reads_the_incoming_gradient_first(tf):
    """ReluGrad(gradients, features): the sign comes from the gradient, not from
    the ReLU's non-negative features."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4, 3], name="x")
        w = tf.compat.v1.get_variable("w", [3, 1], use_resource=False)
        grad = tf.gradients(tf.reduce_sum(tf.matmul(tf.nn.relu(x), w)), [x])[0]
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(tf.reduce_sum(grad))
    num = _numeric(g)
    assert _v(num, grad).lo == -np.inf and _v(num, grad).hi == np.inf
