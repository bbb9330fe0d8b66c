"""GF006: masked / weighted sums whose weight is 0 exactly where the term is
undefined.

``mask * -log(p)`` is meant to ignore padded steps, but when the padded step's
probability is exactly 0 the term is inf and 0 * inf = NaN poisons the sum
(and the gradient).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, get_var, placeholder, positive_uniform, register

# --- pointer network over a padded input sequence ---------------------------

B = 4
L = 5  # input positions
T = 3  # decoder steps
F = 6
H = 8
_LENGTHS = [5, 3, 4, 2]
_STEPS = [3, 2, 3, 1]


@register("masked_pointer_nll_adam", ("GF006",), may_also_match=("GF005", "GF002", "GF009"))
def masked_pointer_nll_adam():
    enc = placeholder("encoder_states", [B, L, F])
    valid = placeholder("valid_positions", [B, L])
    targets = placeholder("pointer_targets", [B, T], tf.int32)
    step_mask = placeholder("step_mask", [B, T])

    keys = tf.reshape(dense(tf.reshape(enc, [B * L, F]), H, "pointer/keys"), [B, 1, L, H])
    with tf.compat.v1.variable_scope("pointer"):
        queries = get_var("step_queries", [T, H])
        v = get_var("v", [H, 1])
    q = tf.reshape(queries, [1, T, 1, H])
    scores = tf.squeeze(tf.tensordot(tf.tanh(keys + q), v, axes=1), axis=-1)  # [B, T, L]
    # masked softmax by multiplication: padded positions get probability exactly 0
    e = tf.exp(scores - tf.reduce_max(scores, axis=-1, keepdims=True)) * tf.expand_dims(valid, 1)
    p = tf.math.truediv(e, tf.reduce_sum(e, axis=-1, keepdims=True), name="pointer_probs")
    with tf.name_scope("loss"):
        p_target = tf.reduce_sum(tf.one_hot(targets, L) * p, axis=-1, name="p_target")  # [B, T]
        nll = step_mask * -tf.math.log(p_target)
        total = tf.math.truediv(tf.reduce_sum(nll), float(B), name="total")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(total, name="train")

    rs = np.random.RandomState(101)
    valid_v = np.zeros((B, L), dtype=np.float32)
    mask_v = np.zeros((B, T), dtype=np.float32)
    tgt = np.zeros((B, T), dtype=np.int32)  # padded steps point at position 0 (a real one)
    for b in range(B):
        valid_v[b, : _LENGTHS[b]] = 1.0
        mask_v[b, : _STEPS[b]] = 1.0
        tgt[b, : _STEPS[b]] = rs.randint(0, _LENGTHS[b], size=_STEPS[b])
    normal = {
        "inputs/encoder_states:0": rs.randn(B, L, F).astype(np.float32),
        "inputs/valid_positions:0": valid_v,
        "inputs/pointer_targets:0": tgt,
        "inputs/step_mask:0": mask_v,
    }
    tgt_t = tgt.copy()
    for b in range(B):
        tgt_t[b, _STEPS[b] :] = L - 1  # padded steps carry the pad index, a padded position
    trigger = dict(normal)
    trigger["inputs/pointer_targets:0"] = tgt_t
    desc = """Pointer network over padded encoder states: additive attention
    scores, masked softmax by multiplication (exp(s - max) * valid / sum), so
    padded positions have probability exactly 0; loss = sum(step_mask *
    -log(p[target])) / batch; Adam, resource variables.  Trigger: padded
    decoder steps (step_mask 0) carry the pad index, which points at a padded
    position -> -log(0) = inf, 0 * inf = NaN loss and gradients."""
    return Built(total, train, normal, trigger, desc)


# --- Poisson regression with a ReLU rate ------------------------------------

PB = 8
PF = 5
OUT = 3


@register("masked_poisson_nll_relu_sgd", ("GF006",), may_also_match=("GF009",))
def masked_poisson_nll_relu_sgd():
    x = placeholder("features", [PB, PF])
    counts = placeholder("counts", [PB, OUT])
    rate = dense(
        x,
        OUT,
        "rate",
        activation=tf.nn.relu,
        kernel_init=positive_uniform("kernel"),
        bias_init=0.5,
        use_resource=False,
    )
    with tf.name_scope("loss"):
        nll = rate - counts * tf.math.log(rate)  # Poisson NLL without the log(k!) constant
        total = tf.reduce_mean(nll, name="total")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(total, name="train")

    rs = np.random.RandomState(102)
    xs = rs.uniform(0.0, 1.0, size=(PB, PF)).astype(np.float32)
    k = rs.poisson(1.5, size=(PB, OUT)).astype(np.float32)
    normal = {"inputs/features:0": xs, "inputs/counts:0": k}
    xt, kt = xs.copy(), k.copy()
    xt[[1, 6]] = -4.0  # sensor off: rate relu(<= -0.5) == 0 exactly
    kt[[1, 6]] = 0.0  # ... and nothing counted
    trigger = {"inputs/features:0": xt, "inputs/counts:0": kt}
    desc = """Poisson regression with a ReLU rate (positive kernel init, bias
    0.5): loss = mean(rate - counts * log(rate)); GradientDescent, ref
    variables.  Trigger: rows whose rate is exactly 0 with count 0 ->
    0 * log(0) = 0 * -inf = NaN loss."""
    return Built(total, train, normal, trigger, desc)
