"""Generate realistic, large TF1 *training* graphs for benchmarking graphfix.

The graph is an L-layer transformer encoder built from raw TF ops (no Keras,
no tf.compat.v1.layers):

* token embedding via ``tf.gather`` on a ``get_variable`` table, plus a learned
  position embedding;
* per layer: multi-head self-attention (Q/K/V/O projections, scaled dot
  product with a key-padding mask, softmax), residual + layer norm (built from
  ``tf.nn.moments``), a 2-layer ReLU FFN, residual + layer norm, dropout;
* an output projection and a per-token sparse softmax cross-entropy;
* a masked token loss with the hazards graphfix repairs::

      mask = cast(sequence_mask(lengths, T), float32)
      main = reduce_sum(xent * mask) / reduce_sum(mask)        # 0/0 on an all-padding batch
      aux  = reduce_mean(boolean_mask(xent, is_special_token))  # mean of empty -> NaN
      loss = main + aux_weight * aux

* with ``--hazards N``, N hazards in all: the two above plus N - 2
  auxiliary terms, alternately ``reduce_mean(boolean_mask(xent, targets == k))``
  (empty when token k does not occur) and ``reduce_sum(xent * m_k) /
  reduce_sum(m_k)`` with ``m_k = cast(targets == k)`` (0/0 then), each on
  its own token id, so that every one is a separate finding and fix (the
  benchmark's many-fixes graph: rewrite must stay linear in nodes);
* trained with ``AdamOptimizer(...).minimize(loss, global_step, name="train")``
  and ``global_variables_initializer(name="init")``.

The per-layer node count is constant, so the number of layers L is solved
from two calibration builds (L=1 and L=2) to land near the requested node
count. Output is byte-deterministic (seeded initialisers, graph-level seed,
deterministic serialisation).

CLI::

    python bench/gen.py --nodes 10000 --out bench/data/t10k.pb

writes the binary GraphDef and a sidecar ``bench/data/t10k.info.json``.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

tf1 = tf.compat.v1

# Model hyper-parameters. They are kept small: the benchmark is about graph
# *structure* (node count), not about tensor sizes, and initialisers are
# random ops (not constants), so the .pb size is dominated by nodes.
D_MODEL = 64
NUM_HEADS = 4
D_FF = 256
VOCAB = 1000
MAX_LEN = 32
SPECIAL_TOKEN_ID = 3  # e.g. a [MASK]/[SEP]-like token that the aux loss looks at
AUX_WEIGHT = 0.1
DROPOUT_RATE = 0.1
LEARNING_RATE = 1e-4


def _setup_tf1(control_flow_v2=False):
    tf1.disable_eager_execution()
    if control_flow_v2:
        tf1.enable_control_flow_v2()
    else:
        tf1.disable_control_flow_v2()


class _Seeds:
    """Hands out distinct, reproducible op-level seeds."""

    def __init__(self):
        self._next = 1

    def __call__(self):
        s = self._next
        self._next += 1
        return s


def _dense(x, d_in, d_out, name, seeds):
    """x: [N, d_in] -> [N, d_out]."""
    with tf1.variable_scope(name):
        w = tf1.get_variable(
            "kernel", [d_in, d_out],
            initializer=tf1.glorot_uniform_initializer(seed=seeds()))
        b = tf1.get_variable("bias", [d_out], initializer=tf1.zeros_initializer())
        return tf.nn.bias_add(tf.matmul(x, w), b)


def _layer_norm(x, d, name, eps=1e-6):
    """Layer norm over the last axis, built from tf.nn.moments."""
    with tf1.variable_scope(name):
        gamma = tf1.get_variable("gamma", [d], initializer=tf1.ones_initializer())
        beta = tf1.get_variable("beta", [d], initializer=tf1.zeros_initializer())
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf1.rsqrt(var + eps) * gamma + beta


def _dropout(x, seeds):
    return tf1.nn.dropout(x, rate=DROPOUT_RATE, seed=seeds())


def _encoder_layer(x2d, batch, attn_bias, i, seeds):
    """One post-LN transformer encoder layer. x2d: [B*T, D]."""
    d_head = D_MODEL // NUM_HEADS
    with tf1.variable_scope("layer_%d" % i):
        with tf1.variable_scope("attention"):
            def heads(t):  # [B*T, D] -> [B, H, T, Dh]
                t = tf.reshape(t, [batch, MAX_LEN, NUM_HEADS, d_head])
                return tf.transpose(t, [0, 2, 1, 3])

            q = heads(_dense(x2d, D_MODEL, D_MODEL, "query", seeds))
            k = heads(_dense(x2d, D_MODEL, D_MODEL, "key", seeds))
            v = heads(_dense(x2d, D_MODEL, D_MODEL, "value", seeds))
            scores = tf.matmul(q, k, transpose_b=True) * (1.0 / float(d_head) ** 0.5)
            scores += attn_bias  # [B, 1, 1, T] key-padding bias
            probs = tf.nn.softmax(scores, axis=-1)
            probs = _dropout(probs, seeds)
            ctx = tf.matmul(probs, v)  # [B, H, T, Dh]
            ctx = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [-1, D_MODEL])
            attn_out = _dropout(_dense(ctx, D_MODEL, D_MODEL, "output", seeds), seeds)
        x2d = _layer_norm(x2d + attn_out, D_MODEL, "attention_ln")
        with tf1.variable_scope("ffn"):
            h = tf.nn.relu(_dense(x2d, D_MODEL, D_FF, "intermediate", seeds))
            h = _dropout(_dense(h, D_FF, D_MODEL, "output", seeds), seeds)
        x2d = _layer_norm(x2d + h, D_MODEL, "ffn_ln")
    return x2d


def _aux_terms(per_token_loss, seq_mask_bool, targets, count):
    """``count`` independent empty-able auxiliary loss terms (see the module docstring)."""
    terms = []
    for k in range(count):
        token = SPECIAL_TOKEN_ID + 1 + k % (VOCAB - SPECIAL_TOKEN_ID - 1)
        with tf1.variable_scope("aux_%d" % k):
            hit = tf.logical_and(tf.equal(targets, token), seq_mask_bool, name="hit")
            if k % 2 == 0:
                terms.append(tf.reduce_mean(tf.boolean_mask(per_token_loss, hit), name="mean"))
            else:
                m = tf.cast(hit, tf.float32, name="m")
                terms.append(tf.math.divide(tf.reduce_sum(per_token_loss * m), tf.reduce_sum(m), name="ratio"))
    return terms


def _build_graph(num_layers, control_flow_v2=False, hazards=2):
    """Build the training graph with `num_layers` layers. Returns (graph, info)."""
    graph = tf.Graph()
    seeds = _Seeds()
    with graph.as_default():
        tf1.set_random_seed(0)
        tokens = tf1.placeholder(tf.int32, [None, MAX_LEN], name="tokens")
        targets = tf1.placeholder(tf.int32, [None, MAX_LEN], name="targets")
        lengths = tf1.placeholder(tf.int32, [None], name="lengths")
        batch = tf.shape(tokens)[0]

        with tf1.variable_scope("encoder"):
            with tf1.variable_scope("embeddings"):
                table = tf1.get_variable(
                    "word_embeddings", [VOCAB, D_MODEL],
                    initializer=tf1.truncated_normal_initializer(stddev=0.02, seed=seeds()))
                pos_table = tf1.get_variable(
                    "position_embeddings", [MAX_LEN, D_MODEL],
                    initializer=tf1.truncated_normal_initializer(stddev=0.02, seed=seeds()))
                emb = tf.gather(table, tokens) * (float(D_MODEL) ** 0.5)  # [B, T, D]
                emb += tf.expand_dims(pos_table, 0)
                x2d = tf.reshape(emb, [-1, D_MODEL])
                x2d = _layer_norm(x2d, D_MODEL, "ln")
                x2d = _dropout(x2d, seeds)

            seq_mask_bool = tf.sequence_mask(lengths, MAX_LEN)  # [B, T] bool
            key_mask = tf.cast(seq_mask_bool, tf.float32)
            attn_bias = tf.reshape((1.0 - key_mask) * -1e9, [batch, 1, 1, MAX_LEN])

            for i in range(num_layers):
                x2d = _encoder_layer(x2d, batch, attn_bias, i, seeds)

        with tf1.variable_scope("output"):
            logits = _dense(x2d, D_MODEL, VOCAB, "logits", seeds)
            logits = tf.reshape(logits, [batch, MAX_LEN, VOCAB])

        with tf1.variable_scope("loss"):
            per_token_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=targets, logits=logits, name="xent")  # [B, T]
            # Hazard 1: zero denominator when every sequence in the batch is padding.
            mask = tf.cast(tf.sequence_mask(lengths, MAX_LEN), tf.float32, name="mask")
            main_loss = tf.math.divide(
                tf.reduce_sum(per_token_loss * mask), tf.reduce_sum(mask),
                name="masked_mean")
            # Hazard 2: mean over an empty boolean_mask when no special token occurs.
            is_special_token = tf.logical_and(
                tf.equal(targets, SPECIAL_TOKEN_ID), seq_mask_bool,
                name="is_special_token")
            if control_flow_v2:
                # The same hazard inside a tf.cond branch (a StatelessIf whose
                # branches are FunctionDefs; its gradient another If).
                use_aux = tf1.placeholder_with_default(True, [], name="use_aux")
                aux_loss = tf.identity(tf.cond(
                    use_aux, lambda: tf.reduce_mean(tf.boolean_mask(per_token_loss, is_special_token)),
                    lambda: tf.constant(0.0), name="aux"), name="aux_loss")
            else:
                aux_loss = tf.reduce_mean(
                    tf.boolean_mask(per_token_loss, is_special_token), name="aux_loss")
            if hazards > 2:
                extra = _aux_terms(per_token_loss, seq_mask_bool, targets, hazards - 2)
                aux_loss = tf.add(aux_loss, tf.add_n(extra) * (1.0 / len(extra)), name="aux_total")
            loss = tf.add(main_loss, AUX_WEIGHT * aux_loss, name="total_loss")

        global_step = tf1.train.get_or_create_global_step()
        train_op = tf1.train.AdamOptimizer(LEARNING_RATE).minimize(
            loss, global_step=global_step, name="train")
        # global_variables_initializer() takes no name; this is what it does, named.
        init_op = tf1.variables_initializer(tf1.global_variables(), name="init")

    info = {
        "num_layers": num_layers,
        "num_heads": NUM_HEADS,
        "d_model": D_MODEL,
        "d_ff": D_FF,
        "vocab": VOCAB,
        "max_len": MAX_LEN,
        "loss": loss.name,
        "main_loss": main_loss.name,
        "aux_loss": aux_loss.name,
        "train_op": train_op.name,
        "init_op": init_op.name,
        "placeholders": {
            p.op.name: {"dtype": p.dtype.name, "shape": p.shape.as_list()}
            for p in (tokens, targets, lengths)
        },
        "special_token_id": SPECIAL_TOKEN_ID,
        "hazards": hazards,
    }
    return graph, info


def _graph_def(graph):
    return graph.as_graph_def()


def _count_nodes(num_layers, control_flow_v2=False, hazards=2):
    graph, _ = _build_graph(num_layers, control_flow_v2, hazards)
    return len(_graph_def(graph).node)


def layers_for(target_nodes, control_flow_v2=False, hazards=2):
    """Return (num_layers, nodes_at_1, nodes_per_layer) to get near target_nodes."""
    n1 = _count_nodes(1, control_flow_v2, hazards)
    n2 = _count_nodes(2, control_flow_v2, hazards)
    per_layer = n2 - n1
    num_layers = max(1, int(round((target_nodes - n1) / float(per_layer))) + 1)
    return num_layers, n1, per_layer


def build(target_nodes, control_flow_v2=False, hazards=2):
    """Build a training graph with about `target_nodes` nodes.

    Returns (graph_def, info). info holds the loss tensor name, train op name,
    init op name, placeholder names/shapes/dtypes, L and the node count.
    """
    _setup_tf1(control_flow_v2)
    num_layers, n1, per_layer = layers_for(target_nodes, control_flow_v2, hazards)
    graph, info = _build_graph(num_layers, control_flow_v2, hazards)
    info["control_flow_v2"] = bool(control_flow_v2)
    graph_def = _graph_def(graph)
    info["target_nodes"] = int(target_nodes)
    info["num_nodes"] = len(graph_def.node)
    info["nodes_per_layer"] = per_layer
    info["nodes_fixed"] = n1 - per_layer
    info["tf_version"] = tf.__version__
    return graph_def, info


def serialize(graph_def):
    return graph_def.SerializeToString(deterministic=True)


def write(target_nodes, out_path, control_flow_v2=False, hazards=2):
    """Build and write `out_path` (binary GraphDef) plus a .info.json sidecar."""
    t0 = time.perf_counter()
    graph_def, info = build(target_nodes, control_flow_v2, hazards)
    data = serialize(graph_def)
    info["gen_seconds"] = round(time.perf_counter() - t0, 3)
    info["bytes"] = len(data)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out_path)  # atomic: a half-written file never looks cached
    with open(info_path(out_path), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    return info


def info_path(pb_path):
    base = pb_path[:-3] if pb_path.endswith(".pb") else pb_path
    return base + ".info.json"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, required=True, help="target node count")
    ap.add_argument("--out", required=True, help="output .pb path (binary GraphDef)")
    ap.add_argument("--control-flow-v2", action="store_true",
                    help="build tf.cond as TF2 functional control flow (the auxiliary mean inside an If branch)")
    ap.add_argument("--hazards", type=int, default=2,
                    help="hazards in all (default 2: the masked mean and the auxiliary mean; more adds "
                         "independent auxiliary terms)")
    args = ap.parse_args(argv)
    if args.hazards < 2:
        ap.error("--hazards is at least 2")
    info = write(args.nodes, args.out, args.control_flow_v2, args.hazards)
    print("%s: %d nodes (target %d, L=%d, %d nodes/layer), %d bytes, %.1fs"
          % (args.out, info["num_nodes"], args.nodes, info["num_layers"],
             info["nodes_per_layer"], info["bytes"], info["gen_seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
