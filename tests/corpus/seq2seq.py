"""GF002: sequence losses normalised by the number of real (non-padding)
tokens.

``sum(xent * mask) / sum(mask)`` is 0/0 on a batch that is all padding: the
loss is NaN and, through the division's gradient (1/0 = inf times a 0 mask),
so are the gradients.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, get_var, glorot, placeholder, register

BATCH = 4
TIME = 6
VOCAB = 7
EMBED = 8
HIDDEN = 10


def _decoder(tokens, use_resource):
    """Embedding -> tanh projection -> causal running mean -> vocab logits."""
    with tf.compat.v1.variable_scope("embedding"):
        table = get_var("table", [VOCAB, EMBED], glorot("table"), use_resource=use_resource)
    emb = tf.nn.embedding_lookup(table, tokens)  # [B, T, E]
    flat = tf.reshape(emb, [BATCH * TIME, EMBED])
    h = dense(flat, HIDDEN, "decoder", activation=tf.nn.tanh, use_resource=use_resource)
    h = tf.reshape(h, [BATCH, TIME, HIDDEN])
    # a cheap causal "recurrence": running mean of the hidden states
    steps = tf.reshape(tf.range(1, TIME + 1, dtype=tf.float32), [1, TIME, 1])
    ctx = tf.cumsum(h, axis=1) / steps
    logits = dense(tf.reshape(ctx, [BATCH * TIME, HIDDEN]), VOCAB, "output", use_resource=use_resource)
    return tf.reshape(logits, [BATCH, TIME, VOCAB])


def _token_xent(use_resource):
    tokens = placeholder("tokens", [BATCH, TIME], tf.int32)
    targets = placeholder("targets", [BATCH, TIME], tf.int32)
    logits = _decoder(tokens, use_resource)
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return xent  # [B, T]


def _token_feeds(seed):
    rs = np.random.RandomState(seed)
    return {
        "inputs/tokens:0": rs.randint(0, VOCAB, size=(BATCH, TIME)).astype(np.int32),
        "inputs/targets:0": rs.randint(0, VOCAB, size=(BATCH, TIME)).astype(np.int32),
    }


def _length_model(use_resource, seed):
    xent = _token_xent(use_resource)
    lengths = placeholder("lengths", [BATCH], tf.int32)
    mask = tf.cast(tf.sequence_mask(lengths, maxlen=TIME), tf.float32, name="token_mask")
    normal = _token_feeds(seed)
    normal["inputs/lengths:0"] = np.array([6, 3, 4, 1], dtype=np.int32)
    trigger = dict(normal)
    trigger["inputs/lengths:0"] = np.zeros(BATCH, dtype=np.int32)  # all padding
    return xent, mask, normal, trigger


@register("seq2seq_sequence_mask_adam", ("GF002",))
def seq2seq_sequence_mask_adam():
    xent, mask, normal, trigger = _length_model(True, seed=31)
    # the hazardous division *is* the loss node
    loss = tf.math.truediv(tf.reduce_sum(xent * mask), tf.reduce_sum(mask), name="loss")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, name="train")
    desc = """Token-level decoder (embedding_lookup, tanh, running-mean context,
    vocab projection) with sparse softmax CE per token; loss =
    reduce_sum(xent * mask) / reduce_sum(mask), mask = cast(sequence_mask(lengths)),
    the RealDiv itself is the loss node "loss"; Adam, resource variables (the
    embedding gradient is IndexedSlices).  Trigger: all lengths 0, 0/0 =
    NaN loss and NaN gradients."""
    return Built(loss, train, normal, trigger, desc)


@register("seq2seq_float_mask_momentum", ("GF002",))
def seq2seq_float_mask_momentum():
    xent = _token_xent(False)
    weights = placeholder("target_weights", [BATCH, TIME])
    with tf.name_scope("loss"):
        num = tf.reduce_sum(xent * weights, name="weighted_xent")
        den = tf.reduce_sum(weights, name="num_tokens")
        total = tf.identity(num / den, name="total")
    step = tf.compat.v1.train.get_or_create_global_step()
    train = tf.compat.v1.train.MomentumOptimizer(0.05, 0.9).minimize(total, global_step=step, name="train")
    normal = _token_feeds(32)
    w = np.zeros((BATCH, TIME), dtype=np.float32)
    for row, n in enumerate([5, 6, 2, 3]):
        w[row, :n] = 1.0
    normal["inputs/target_weights:0"] = w
    trigger = dict(normal)
    trigger["inputs/target_weights:0"] = np.zeros((BATCH, TIME), dtype=np.float32)
    desc = """Same decoder with a float target-weights placeholder (0/1 per
    token, as in the TF1 seq2seq tutorials): loss = reduce_sum(xent * w) /
    reduce_sum(w); Momentum with a global_step, ref variables.  Trigger: all weights 0 (an
    all-padding batch) -> NaN loss and gradients."""
    return Built(total, train, normal, trigger, desc)


@register("seq2seq_reciprocal_count_sgd", ("GF002",))
def seq2seq_reciprocal_count_sgd():
    xent, mask, normal, trigger = _length_model(True, seed=33)
    with tf.name_scope("loss"):
        inv_tokens = tf.math.reciprocal(tf.reduce_sum(mask), name="inv_num_tokens")
        total = tf.multiply(tf.reduce_sum(xent * mask), inv_tokens, name="total")
    train = tf.compat.v1.train.GradientDescentOptimizer(0.5).minimize(total, name="train")
    desc = """Decoder as above; normalisation written as a multiplication by
    reciprocal(reduce_sum(mask)) (Mul(Reciprocal) form); GradientDescent,
    resource variables.  Trigger: all lengths 0 -> 0 * inf = NaN loss and NaN
    gradients."""
    return Built(total, train, normal, trigger, desc)


@register("seq2seq_per_sequence_mean_rmsprop", ("GF002",))
def seq2seq_per_sequence_mean_rmsprop():
    xent, mask, normal, trigger = _length_model(False, seed=34)
    with tf.name_scope("loss"):
        per_seq = tf.reduce_sum(xent * mask, axis=1) / tf.reduce_sum(mask, axis=1)
        total = tf.reduce_mean(per_seq, name="total")
    train = tf.compat.v1.train.RMSPropOptimizer(1e-3).minimize(total, name="train")
    trigger["inputs/lengths:0"] = np.array([3, 0, 5, 2], dtype=np.int32)  # one empty sequence
    desc = """Decoder as above; each sequence's loss is normalised by its own
    length (reduce_sum(xent*mask, 1) / reduce_sum(mask, 1)) and then averaged
    over the batch; RMSProp, ref variables.  Trigger: a single empty
    sequence (length 0) in an otherwise normal batch -> that row is 0/0, the
    batch loss and the gradients are NaN."""
    return Built(total, train, normal, trigger, desc)


@register("seq2seq_sequence_mask_eval", ("GF002",))
def seq2seq_sequence_mask_eval():
    xent, mask, normal, trigger = _length_model(True, seed=35)
    with tf.name_scope("eval"):
        loss = tf.math.truediv(tf.reduce_sum(xent * mask), tf.reduce_sum(mask), name="token_xent")
    desc = """Forward-only evaluation graph (no optimizer, train_op None) of
    the decoder: per-token CE normalised by reduce_sum(sequence_mask).
    Trigger: all lengths 0 -> NaN."""
    return Built(loss, None, normal, trigger, desc)


@register("seq2seq_legacy_div_adagrad", ("GF002",))
def seq2seq_legacy_div_adagrad():
    xent, mask, normal, trigger = _length_model(False, seed=36)
    with tf.name_scope("loss"):
        # the legacy "Div" op that graphs written by old TF 1.x versions carry
        total = tf.raw_ops.Div(x=tf.reduce_sum(xent * mask), y=tf.reduce_sum(mask), name="total")
    train = tf.compat.v1.train.AdagradOptimizer(0.1).minimize(total, name="train")
    desc = """Decoder as above normalised with the legacy Div op (as found in
    GraphDefs written by old TF 1.x tf.div) instead of RealDiv; Adagrad, ref
    variables.  Trigger: all lengths 0 -> 0/0 NaN loss and gradients."""
    return Built(total, train, normal, trigger, desc)
