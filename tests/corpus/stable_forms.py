"""Safe by construction, each in two forms: the stable forms and guards real
code uses, which a pattern-based checker flags (issue #11's false-alarm
classes).  The numeric analysis must show each safe: no finding, the graph
comes out byte-identical, and the trigger feed (the input that would break
the unguarded version) stays finite.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, get_var, placeholder, register

BATCH, FEAT, K = 6, 5, 4


def _xy(seed, k=K, positive=None):
    rs = np.random.RandomState(seed)
    feeds = {"inputs/x:0": rs.randn(BATCH, FEAT).astype(np.float32),
             "inputs/y:0": np.eye(k, dtype=np.float32)[rs.randint(0, k, BATCH)]}
    return feeds


def _head(k=K, scope="net"):
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, k])
    h = dense(x, 8, f"{scope}/hidden", activation=tf.nn.relu)
    return x, y, dense(h, k, f"{scope}/logits")


# --- max-subtracted softmax: its sum is >= 1 ----------------------------------

@register("safe_stable_softmax_max_shift_adam")
def safe_stable_softmax_max_shift_adam():
    _, y, z = _head()
    e = tf.exp(z - tf.reduce_max(z, axis=1, keepdims=True))
    p = e / tf.reduce_sum(e, axis=1, keepdims=True)
    loss = tf.reduce_mean(tf.reduce_sum(tf.square(p - y), axis=1), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    normal = _xy(1)
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})
    return Built(loss, train, normal, trigger, "hand-written softmax exp(z - max z) / sum(...): the sum is >= 1")


@register("safe_stable_attention_stop_gradient_max_momentum")
def safe_stable_attention_stop_gradient_max_momentum():
    x, y, z = _head()
    m = tf.stop_gradient(tf.reduce_max(z, axis=-1, keepdims=True))
    e = tf.exp(z - m)
    attn = tf.math.truediv(e, tf.reduce_sum(e, axis=-1, keepdims=True), name="attention")
    out = tf.reduce_sum(attn * y, axis=1)
    lse = tf.squeeze(m, 1) + tf.math.log(tf.reduce_sum(e, axis=-1))
    loss = tf.reduce_mean(tf.square(out - 1.0) + 0.01 * lse, name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    normal = _xy(2)
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})
    return Built(loss, train, normal, trigger, "attention weights and logsumexp with a stop-gradient max shift")


# --- sigmoid cross-entropy: exp(-|x|) <= 1 -------------------------------------

@register("safe_stable_sigmoid_xent_sgd")
def safe_stable_sigmoid_xent_sgd():
    _, y, z = _head()
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z), name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    normal = _xy(3)
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})
    return Built(loss, train, normal, trigger, "tf.nn.sigmoid_cross_entropy_with_logits: exp(where(z >= 0, -z, z))")


@register("safe_stable_sigmoid_xent_by_hand_adam")
def safe_stable_sigmoid_xent_by_hand_adam():
    _, y, z = _head()
    per = tf.nn.relu(z) - z * y + tf.math.log1p(tf.exp(-tf.abs(z)))
    loss = tf.reduce_mean(per, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    normal = _xy(4)
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})
    return Built(loss, train, normal, trigger, "sigmoid cross-entropy by hand: relu(z) - z*y + log1p(exp(-|z|))")


# --- division by a power of two --------------------------------------------------

@register("safe_stable_pow2_scale_sgd")
def safe_stable_pow2_scale_sgd():
    _, y, z = _head()
    scaled = z / tf.pow(2.0, -3.0)
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=scaled / 8.0), name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    normal = _xy(5)
    return Built(loss, train, normal, dict(normal), "logits / pow(2, -3): a constant power of two")


@register("safe_stable_pow2_loss_scale_adam")
def safe_stable_pow2_loss_scale_adam():
    _, y, z = _head()
    scale = tf.pow(tf.constant(2.0), tf.negative(tf.constant(4.0)), name="loss_scale")
    xent = tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)
    loss = tf.math.truediv(tf.reduce_mean(xent) * scale, scale, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    normal = _xy(6)
    return Built(loss, train, normal, dict(normal), "loss scaled and unscaled by pow(2, -4)")


# --- a metric's where(count > 0, total / count, 0) in a graph nothing differentiates

def _streaming_mean(values, scope):
    with tf.compat.v1.variable_scope(scope):
        total = get_var("total", [], tf.compat.v1.zeros_initializer(), trainable=False)
        count = get_var("count", [], tf.compat.v1.zeros_initializer(), trainable=False)
        update = tf.group(total.assign_add(tf.reduce_sum(values)),
                          count.assign_add(tf.cast(tf.size(values), tf.float32)), name="update")
        value = tf.where(count > 0, tf.math.truediv(total, count), 0.0, name="value")
    return value, update


@register("safe_stable_metric_mean_eval")
def safe_stable_metric_mean_eval():
    _, y, z = _head()
    xent = tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)
    value, _ = _streaming_mean(xent, "metrics/mean_xent")
    loss = tf.add(tf.reduce_mean(xent), value, name="loss")
    return Built(loss, None, _xy(7), _xy(7), "tf.metrics.mean's where(count > 0, total / count, 0), evaluation only")


@register("safe_stable_metric_accuracy_eval")
def safe_stable_metric_accuracy_eval():
    _, y, z = _head()
    hit = tf.cast(tf.equal(tf.argmax(z, 1), tf.argmax(y, 1)), tf.float32)
    value, _ = _streaming_mean(hit, "metrics/accuracy")
    xent = tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)
    loss = tf.add(tf.reduce_mean(xent), value, name="loss")
    return Built(loss, None, _xy(8), _xy(8), "a streaming accuracy where(count > 0, total / count, 0)")


# --- the old dropout: x / keep_prob * floor(keep_prob + U) ----------------------

def _dropout(h, keep_prob):
    noise = keep_prob + tf.random.uniform(tf.shape(h), seed=7)
    return h / keep_prob * tf.floor(noise)


@register("safe_stable_dropout_placeholder_keep_prob_adam")
def safe_stable_dropout_placeholder_keep_prob_adam():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, K])
    keep = tf.compat.v1.placeholder_with_default(1.0, [], name="keep_prob")
    h = _dropout(dense(x, 8, "net/hidden", activation=tf.nn.relu), keep)
    z = dense(h, K, "net/logits")
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, _xy(9), _xy(9), "the old tf.nn.dropout with a keep_prob placeholder (default 1)")


@register("safe_stable_dropout_const_keep_prob_sgd")
def safe_stable_dropout_const_keep_prob_sgd():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, K])
    h = _dropout(dense(x, 8, "net/hidden", activation=tf.nn.relu), tf.constant(0.5))
    z = dense(h, K, "net/logits")
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z), name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return Built(loss, train, _xy(10), _xy(10), "the old dropout with a constant keep_prob")


# --- a mean inside cond(size(sel) > 0, ...), an element-wise op in between --------

def _selection():
    x, y, z = _head()
    err = tf.reduce_sum(tf.square(z - y), axis=1)
    positive = placeholder("positive", [BATCH], tf.bool)
    return err, tf.boolean_mask(err, positive)


def _feeds_positive(seed):
    normal = _xy(seed)
    normal["inputs/positive:0"] = np.array([1, 0, 1, 0, 0, 1], bool)
    return normal, dict(normal, **{"inputs/positive:0": np.zeros(BATCH, bool)})


@register("safe_stable_cond_size_square_mean_adam")
def safe_stable_cond_size_square_mean_adam():
    err, sel = _selection()
    term = tf.compat.v1.cond(tf.size(sel) > 0, lambda: tf.reduce_mean(tf.square(sel)), lambda: tf.constant(0.0))
    loss = tf.add(tf.reduce_mean(err), term, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, *_feeds_positive(11), "cond(size(sel) > 0, mean(square(sel)), 0)")


@register("safe_stable_cond_size_abs_rows_momentum")
def safe_stable_cond_size_abs_rows_momentum():
    err, sel = _selection()
    term = tf.compat.v1.cond(tf.greater(tf.size(sel), 0), lambda: tf.reduce_mean(tf.abs(sel) * 2.0),
                             lambda: tf.zeros([]))
    loss = tf.add(tf.reduce_mean(err), term, name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    return Built(loss, train, *_feeds_positive(12), "cond(size(sel) > 0, mean(abs(sel) * 2), 0)")


# --- Keras-style switch: the mean computed outside the guard ---------------------

@register("safe_stable_switch_where_mean_outside_adam")
def safe_stable_switch_where_mean_outside_adam():
    err, sel = _selection()
    m = tf.reduce_mean(sel)
    term = tf.where(tf.size(sel) > 0, m, 0.0)
    loss = tf.add(tf.reduce_mean(err), term, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, *_feeds_positive(13), "where(size(sel) > 0, mean(sel), 0) with the mean outside")


@register("safe_stable_switch_cond_mean_outside_sgd")
def safe_stable_switch_cond_mean_outside_sgd():
    err, sel = _selection()
    m = tf.reduce_mean(sel)
    term = tf.compat.v1.cond(tf.size(sel) > 0, lambda: m, lambda: tf.constant(0.0))
    loss = tf.add(tf.reduce_mean(err), term, name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return Built(loss, train, *_feeds_positive(14), "K.switch(size(sel) > 0, mean, 0): cond over a mean made outside")


# --- an epsilon added only where the count is 0 ---------------------------------

def _masked_sum():
    x, y, z = _head()
    lengths = placeholder("lengths", [BATCH], tf.int32)
    mask = tf.cast(tf.sequence_mask(lengths, K), tf.float32)
    per = tf.square(z - y) * mask
    return tf.reduce_sum(per), tf.reduce_sum(mask)


def _feeds_lengths(seed):
    normal = _xy(seed)
    normal["inputs/lengths:0"] = np.array([4, 2, 3, 1, 4, 2], np.int32)
    return normal, dict(normal, **{"inputs/lengths:0": np.zeros(BATCH, np.int32)})


@register("safe_stable_eps_where_zero_count_adam")
def safe_stable_eps_where_zero_count_adam():
    total, count = _masked_sum()
    den = count + tf.cast(tf.equal(count, 0.0), tf.float32) * 1e-6
    loss = tf.math.truediv(total, den, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, *_feeds_lengths(15), "sum / (count + eps * cast(count == 0))")


@register("safe_stable_where_zero_count_one_sgd")
def safe_stable_where_zero_count_one_sgd():
    total, count = _masked_sum()
    den = tf.where(tf.equal(count, 0.0), tf.ones_like(count), count)
    loss = tf.math.truediv(total, den, name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return Built(loss, train, *_feeds_lengths(16), "sum / where(count == 0, 1, count)")


# --- a where substituting a safe value for invalid entries ------------------------

@register("safe_stable_where_safe_value_log_adam")
def safe_stable_where_safe_value_log_adam():
    _, y, z = _head()
    p = tf.sigmoid(z)
    valid = p > 0
    safe = tf.where(valid, p, tf.ones_like(p))
    loss = tf.negative(tf.reduce_mean(y * tf.math.log(safe)), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    normal = _xy(17)
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})
    return Built(loss, train, normal, trigger, "y * log(where(p > 0, p, 1)): the where keeps log's argument > 0")


@register("safe_stable_where_safe_value_sqrt_momentum")
def safe_stable_where_safe_value_sqrt_momentum():
    _, y, z = _head()
    d = tf.reduce_sum(tf.square(z - y), axis=1)
    nonzero = d > 0
    dist = tf.where(nonzero, tf.sqrt(tf.where(nonzero, d, tf.ones_like(d))), tf.zeros_like(d))
    loss = tf.reduce_mean(dist, name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    return Built(loss, train, _xy(18), _xy(18), "the safe norm: where(d > 0, sqrt(where(d > 0, d, 1)), 0)")


# --- uncertainty weighting: exp(-s) * L + s with a learned s ----------------------

@register("safe_stable_uncertainty_weighting_adam")
def safe_stable_uncertainty_weighting_adam():
    _, y, z = _head()
    s = get_var("log_var", [], tf.compat.v1.zeros_initializer())
    xent = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z))
    loss = tf.add(tf.exp(-s) * xent, s, name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, _xy(19), _xy(19), "exp(-s) * L + s (Kendall et al.), s learned")


@register("safe_stable_uncertainty_two_tasks_sgd")
def safe_stable_uncertainty_two_tasks_sgd():
    _, y, z = _head()
    s1 = get_var("log_var_cls", [], tf.compat.v1.zeros_initializer())
    s2 = get_var("log_var_reg", [], tf.compat.v1.zeros_initializer())
    l1 = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z))
    l2 = tf.reduce_mean(tf.square(z - y))
    loss = tf.add_n([0.5 * tf.exp(-2.0 * s1) * l1, s1, tf.exp(-s2) * l2, s2], name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    return Built(loss, train, _xy(20), _xy(20), "two-task uncertainty weighting")


# --- the largest probability of a softmax row is >= 1/n: its log is finite ---------

@register("safe_stable_log_max_softmax_adam")
def safe_stable_log_max_softmax_adam():
    _, y, z = _head()
    ret = placeholder("ret", [BATCH])
    confidence = tf.reduce_max(tf.nn.softmax(z), axis=1)
    loss = tf.reduce_mean(-tf.math.log(confidence) * ret + tf.reduce_sum(tf.square(z - y), axis=1), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    normal = dict(_xy(21), **{"inputs/ret:0": np.linspace(-1.0, 1.0, BATCH).astype(np.float32)})
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})
    return Built(loss, train, normal, trigger, "log(reduce_max(softmax(z), 1)) weighted by a fed return: >= log(1/K)")


@register("safe_stable_log_max_softmax_steps_momentum")
def safe_stable_log_max_softmax_steps_momentum():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, K])
    z = tf.reshape(dense(dense(x, 8, "net/hidden", activation=tf.nn.relu), 3 * K, "net/logits"), [BATCH, 3, K])
    peak = tf.reduce_max(tf.nn.softmax(z), axis=-1, keepdims=True)
    entropy_bonus = tf.reduce_mean(tf.math.log(peak))
    loss = tf.add(tf.reduce_mean(tf.square(tf.reduce_mean(z, axis=1) - y)), 0.1 * entropy_bonus, name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    normal = _xy(22)
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})
    return Built(loss, train, normal, trigger, "log of each step's largest softmax probability (a [B, T, K] softmax)")


# --- a softmax row renormalised by its own sum (Keras' categorical_crossentropy) ------

def _renormalised_xent(p, y, axis):
    """Keras 2's categorical_crossentropy on a softmax output: p / sum(p) over
    the class axis, clipped to [1e-7, 1 - 1e-7], then -sum(y * log(p))."""
    p = p / tf.reduce_sum(p, axis=axis, keepdims=True)
    p = tf.clip_by_value(p, 1e-7, 1.0 - 1e-7)
    return -tf.reduce_sum(y * tf.math.log(p), axis=axis)


@register("safe_stable_softmax_renormalised_by_sum_adam")
def safe_stable_softmax_renormalised_by_sum_adam():
    _, y, z = _head()
    loss = tf.reduce_mean(_renormalised_xent(tf.nn.softmax(z), y, -1), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    normal = _xy(27)
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})  # saturated softmax rows
    return Built(loss, train, normal, trigger, "Keras' categorical_crossentropy: softmax / reduce_sum(softmax, -1): "
                 "a row's sum is >= its largest probability >= 1/K")


@register("safe_stable_sequence_softmax_renormalised_momentum")
def safe_stable_sequence_softmax_renormalised_momentum():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, 3, K])
    z = tf.reshape(dense(dense(x, 8, "net/hidden", activation=tf.nn.relu), 3 * K, "net/logits"), [BATCH, 3, K])
    loss = tf.reduce_mean(_renormalised_xent(tf.nn.softmax(z), y, 2), name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    rs = np.random.RandomState(28)
    normal = {"inputs/x:0": rs.randn(BATCH, FEAT).astype(np.float32),
              "inputs/y:0": np.eye(K, dtype=np.float32)[rs.randint(0, K, (BATCH, 3))]}
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})
    return Built(loss, train, normal, trigger, "Keras' categorical_crossentropy on a [B, T, K] softmax (a "
                 "TimeDistributed output): renormalised by its sum over the class axis (2)")


# --- box targets in a window's frame: a slice picks one packed element ------------

def _boxes(seed):
    images = placeholder("images", [BATCH, 8, 8, 1])
    boxes = placeholder("boxes", [BATCH, 4])  # pixel corners (ymin, xmin, ymax, xmax)
    pred = dense(dense(tf.reshape(images, [BATCH, 64]), 8, "net/hidden", activation=tf.nn.relu), 4, "net/boxes")
    # the object detection API's clip window [0, 0, height, width], from the image's shape
    window = tf.cast(tf.stack([0, 0, tf.shape(images)[1], tf.shape(images)[2]]), tf.float32)
    rs = np.random.RandomState(seed)
    normal = {"inputs/images:0": rs.rand(BATCH, 8, 8, 1).astype(np.float32),
              "inputs/boxes:0": np.sort(rs.randint(0, 9, (BATCH, 4)), axis=1).astype(np.float32)}
    trigger = dict(normal, **{"inputs/boxes:0": np.zeros((BATCH, 4), np.float32)})  # degenerate boxes at the corner
    return pred, boxes, window, normal, trigger


@register("safe_stable_box_targets_in_window_frame_adam")
def safe_stable_box_targets_in_window_frame_adam():
    pred, boxes, window, normal, trigger = _boxes(29)
    height, width = window[2] - window[0], window[3] - window[1]
    target = (boxes - tf.stack([window[0], window[1], window[0], window[1]])) / tf.stack([height, width, height, width])
    loss = tf.reduce_mean(tf.square(pred - target), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, normal, trigger, "box targets in the clip window's frame (change_coordinate_frame): "
                 "window[2] - window[0] of stack([0, 0, h, w]) is the image height, not the packed 0")


@register("safe_stable_box_targets_window_in_map_fn_momentum")
def safe_stable_box_targets_window_in_map_fn_momentum():
    pred, boxes, window, normal, trigger = _boxes(30)

    def one(b):  # the window enters the map_fn's while loop (Enter)
        return b / (window[-1] - window[1])

    target = tf.map_fn(one, boxes)
    loss = tf.reduce_mean(tf.square(pred - target), name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    return Built(loss, train, normal, trigger, "per-example box scaling inside tf.map_fn by the window's width "
                 "(window[-1] - window[1] of stack([0, 0, h, w]), read through the loop's Enter)")


# --- a softmax of bounded logits cannot underflow: its log is finite ----------------

@register("safe_stable_log_softmax_of_sigmoid_adam")
def safe_stable_log_softmax_of_sigmoid_adam():
    _, y, z = _head()
    p = tf.nn.softmax(tf.sigmoid(z))  # a sigmoid output layer fed to a softmax: logits in [0, 1]
    loss = tf.reduce_mean(-tf.reduce_sum(y * tf.math.log(p), axis=1), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    normal = _xy(31)
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})  # saturated sigmoids
    return Built(loss, train, normal, trigger, "hand-written -sum(y * log(softmax(sigmoid(z)))): every "
                 "probability is >= e^-1 / K, so the log is finite")


@register("safe_stable_attention_entropy_tanh_scores_momentum")
def safe_stable_attention_entropy_tanh_scores_momentum():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, K])
    keys = tf.reshape(dense(x, 3 * 8, "net/keys", activation=tf.nn.relu), [BATCH, 3, 8])
    query = get_var("net/query", [8], tf.compat.v1.random_normal_initializer(seed=3))
    attn = tf.nn.softmax(10.0 * tf.tanh(tf.tensordot(keys, query, 1)))  # scores squashed to [-10, 10]
    entropy = -tf.reduce_sum(attn * tf.math.log(attn), axis=1)
    pooled = tf.reduce_sum(keys * tf.expand_dims(attn, -1), axis=1)
    z = dense(pooled, K, "net/logits")
    xent = tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)
    loss = tf.reduce_mean(xent - 0.01 * entropy, name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    normal = _xy(32)
    trigger = dict(normal, **{"inputs/x:0": normal["inputs/x:0"] * 1e4})
    return Built(loss, train, normal, trigger, "an attention entropy bonus over softmax(10 tanh(k . q)): "
                 "each weight is >= e^-20 / 3, so log(attn) is finite")


# --- dropout whose rate comes from a keep-probability placeholder ------------------

def _keep_prob():
    return tf.compat.v1.placeholder_with_default(1.0, [], name="keep_prob")


@register("safe_stable_dropout_rate_from_keep_prob_sgd")
def safe_stable_dropout_rate_from_keep_prob_sgd():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, K])
    h = dense(x, 8, "net/hidden", activation=tf.nn.relu)
    rate = 1.0 - _keep_prob()
    h = h / (1.0 - rate) * tf.cast(tf.random.uniform(tf.shape(h), seed=7) >= rate, tf.float32)
    z = dense(h, K, "net/logits")
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z), name="loss")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
    normal = _xy(23)
    trigger = dict(normal, **{"keep_prob:0": np.float32(0.8)})  # dropout on (the default keep_prob is 1)
    return Built(loss, train, normal, trigger, "dropout x / (1 - rate) * cast(U >= rate), rate = 1 - keep_prob (fed)")


@register("safe_stable_dropout_inverted_keep_prob_adam")
def safe_stable_dropout_inverted_keep_prob_adam():
    x = placeholder("x", [BATCH, FEAT])
    y = placeholder("y", [BATCH, K])
    keep = _keep_prob()
    h = dense(x, 8, "net/hidden", activation=tf.nn.relu)
    mask = tf.cast(tf.random.uniform(tf.shape(h), seed=7) < keep, tf.float32)
    h = mask * (h / keep)
    z = dense(h, K, "net/logits")
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    normal = _xy(24)
    trigger = dict(normal, **{"keep_prob:0": np.float32(0.5)})
    return Built(loss, train, normal, trigger, "hand-written inverted dropout mask * (h / keep_prob), keep_prob fed")


# --- a learned output against fed float targets: 0 only by coincidence ---------

def _regression(seed):
    x = placeholder("x", [BATCH, FEAT])
    t = placeholder("t", [BATCH, K])
    h = dense(x, 8, "net/hidden", activation=tf.nn.relu)
    pred = dense(h, K, "net/out")  # linear output with a bias: no point it sits on
    rs = np.random.RandomState(seed)
    normal = {"inputs/x:0": rs.randn(BATCH, FEAT).astype(np.float32),
              "inputs/t:0": rs.randn(BATCH, K).astype(np.float32)}
    # exact round targets and a duplicated row: still no exact fit
    xt = normal["inputs/x:0"].copy()
    xt[1] = xt[0]
    trigger = dict(normal, **{"inputs/x:0": xt, "inputs/t:0": np.zeros((BATCH, K), np.float32)})
    return pred, t, normal, trigger


@register("safe_stable_rmse_linear_output_adam")
def safe_stable_rmse_linear_output_adam():
    pred, t, normal, trigger = _regression(25)
    loss = tf.sqrt(tf.reduce_mean(tf.square(t - pred)), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    return Built(loss, train, normal, trigger, "RMSE sqrt(mean(square(target - (h @ W + b)))) against fed float "
                 "targets: a learned linear output meets a target exactly only by coincidence")


@register("safe_stable_euclidean_distance_regression_momentum")
def safe_stable_euclidean_distance_regression_momentum():
    pred, t, normal, trigger = _regression(26)
    d = tf.math.reduce_euclidean_norm(pred - t, axis=1)
    loss = tf.reduce_mean(d, name="loss")
    train = tf.compat.v1.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, name="train")
    return Built(loss, train, normal, trigger, "per-example Euclidean distance between a linear regression head "
                 "and fed float targets (EuclideanNorm op): 0 only by coincidence")


# --- a WGAN-GP slope norm of a leaky-ReLU critic: 0 only on a measure-zero set ---

def _wgan_gp(seed, layers):
    real = placeholder("real", [BATCH, FEAT])
    z = placeholder("z", [BATCH, 3])
    fake = dense(dense(z, 8, "gen/hidden", activation=tf.nn.relu), FEAT, "gen/out")
    u = tf.random.uniform([BATCH, 1], seed=11)
    x_hat = u * real + (1.0 - u) * fake

    def critic(x):
        with tf.compat.v1.variable_scope("critic", reuse=tf.compat.v1.AUTO_REUSE):
            h = x
            for i in range(layers):
                h = dense(h, 8, f"layer{i}", activation=lambda t: tf.nn.leaky_relu(t, 0.2))
            return dense(h, 1, "score")

    slope = tf.gradients(critic(x_hat), [x_hat])[0]
    norm = tf.sqrt(tf.reduce_sum(tf.square(slope), axis=1))
    loss = tf.reduce_mean(critic(fake) - critic(real)) + 10.0 * tf.reduce_mean(tf.square(norm - 1.0))
    loss = tf.identity(loss, name="loss")
    rs = np.random.RandomState(seed)
    normal = {"inputs/real:0": rs.randn(BATCH, FEAT).astype(np.float32),
              "inputs/z:0": rs.randn(BATCH, 3).astype(np.float32)}
    trigger = dict(normal, **{"inputs/real:0": np.zeros((BATCH, FEAT), np.float32)})  # all-zero inputs
    return loss, normal, trigger


@register("safe_stable_wgan_gp_leaky_relu_adam")
def safe_stable_wgan_gp_leaky_relu_adam():
    loss, normal, trigger = _wgan_gp(27, 1)
    train = tf.compat.v1.train.AdamOptimizer(1e-4, 0.5, 0.9).minimize(loss, name="train")
    return Built(loss, train, normal, trigger, "WGAN-GP penalty (|| d critic / d x_hat || - 1)^2 with a leaky-ReLU "
                 "critic: its slope is alpha or 1, never 0, so the input gradient is 0 only by coincidence")


@register("safe_stable_wgan_gp_two_leaky_layers_rmsprop")
def safe_stable_wgan_gp_two_leaky_layers_rmsprop():
    loss, normal, trigger = _wgan_gp(28, 2)
    train = tf.compat.v1.train.RMSPropOptimizer(1e-4).minimize(loss, name="train")
    return Built(loss, train, normal, trigger, "WGAN-GP penalty with a two-layer leaky-ReLU critic (RMSProp)")
