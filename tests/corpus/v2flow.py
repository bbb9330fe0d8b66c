"""Training graphs built with TF2 functional control flow (issue #12).

The hazard patterns of shared/hazards.md inside ``tf.cond`` branches,
``tf.while_loop`` and ``tf.map_fn`` bodies, a cond nested in a while body, and
a function shared by two call sites, built as TensorFlow 2.x builds them in
``tf.compat.v1`` graph mode when control flow v2 is on: ``If``/``StatelessIf``
and ``While``/``StatelessWhile`` ops whose bodies are ``FunctionDef``s, and
gradients that are again ``If``/``While`` ops calling gradient functions
(with the forward branches rewritten to expose intermediates).

These cases live in their own registry (:data:`V2_CASES`): the main corpus
promises v1 control flow only.  The builder turns control flow v2 on while it
builds (the corpus package turns it off at import) and restores it after.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import tensorflow as tf

from . import Built, Case, _canonical_meta_graph, get_var, placeholder

V2_CASES: dict[str, Callable[[], Case]] = {}


@contextlib.contextmanager
def control_flow_v2():
    from tensorflow.python.ops import control_flow_util

    old = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = True
    try:
        yield
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = old


def register_v2(name: str, codes: tuple[str, ...]):
    def decorator(fn):
        def builder() -> Case:
            graph = tf.Graph()
            with graph.as_default(), control_flow_v2():
                tf.compat.v1.set_random_seed(0)
                built = fn()
                tf.compat.v1.variables_initializer(tf.compat.v1.global_variables(), name="init")
                variables = tuple(sorted(v.op.name for v in tf.compat.v1.trainable_variables()))
            meta = _canonical_meta_graph(tf.compat.v1.train.export_meta_graph(graph=graph))
            return Case(name=name, codes=tuple(codes), graph_def=graph.as_graph_def(), meta_graph_def=meta,
                        loss=built.loss.name, train_op=None if built.train_op is None else built.train_op.name,
                        init_op="init", variables=variables, feeds_normal=dict(built.feeds_normal),
                        feeds_trigger=dict(built.feeds_trigger), description=" ".join(built.description.split()))

        builder.case_name = name
        builder.codes = tuple(codes)
        builder.__wrapped__ = fn
        V2_CASES[name] = builder
        return builder

    return decorator


def build_v2(name: str) -> Case:
    return V2_CASES[name]()


def _optimizer(kind: str):
    if kind == "adam":
        return tf.compat.v1.train.AdamOptimizer(0.01)
    return tf.compat.v1.train.MomentumOptimizer(0.05, 0.9)


B, F, H, T = 6, 4, 5, 3


# --- GF001 in a cond branch: the auxiliary mean over the positive anchors ----

def _cond_detection(opt: str, resource: bool) -> Built:
    x = placeholder("features", [B, F])
    labels = placeholder("labels", [B])
    use_aux = placeholder("use_aux", [], tf.bool)
    w = get_var("head/w", [F, 1], use_resource=resource)
    b = get_var("head/b", [1], tf.compat.v1.zeros_initializer(), use_resource=resource)
    per = tf.reshape(tf.matmul(x, w) + b, [B])
    with tf.name_scope("loss"):
        main = tf.reduce_mean(tf.square(per - labels))
        aux = tf.cond(use_aux, lambda: tf.reduce_mean(tf.boolean_mask(per, labels > 0)),
                      lambda: tf.constant(0.0), name="aux")
        total = tf.add(main, aux, name="total")
    train = _optimizer(opt).minimize(total, name="train")
    rs = np.random.RandomState(7)
    xv = rs.randn(B, F).astype(np.float32)
    normal = {"inputs/features:0": xv, "inputs/labels:0": np.float32([1, 0, 2, 0, 0, 1]),
              "inputs/use_aux:0": np.bool_(True)}
    trigger = dict(normal, **{"inputs/labels:0": np.zeros(B, np.float32)})
    return Built(total, train, normal, trigger, "regression head with an auxiliary mean over the positive "
                 "anchors inside tf.cond (control flow v2: StatelessIf)")


@register_v2("v2_cond_boolean_mask_adam", ("GF001",))
def v2_cond_boolean_mask_adam():
    return _cond_detection("adam", resource=False)


@register_v2("v2_cond_boolean_mask_momentum", ("GF001",))
def v2_cond_boolean_mask_momentum():
    return _cond_detection("momentum", resource=True)


# --- GF002 inside a while body: per-step loss normalised by the mask sum -----

def _while_seq(opt: str, resource: bool) -> Built:
    x = placeholder("steps", [T, B, F])
    mask = placeholder("mask", [T, B])
    w = get_var("rnn/w", [F, H], use_resource=resource)
    u = get_var("rnn/u", [H, H], use_resource=resource)
    v = get_var("rnn/v", [H, 1], use_resource=resource)

    def body(t, h, acc):
        h = tf.tanh(tf.matmul(x[t], w) + tf.matmul(h, u))
        err = tf.reshape(tf.matmul(h, v), [B])
        m = mask[t]
        step = tf.reduce_sum(tf.square(err) * m) / tf.reduce_sum(m)  # 0/0 on an all-padding step
        return t + 1, h, acc + step

    with tf.name_scope("loss"):
        _, _, acc = tf.while_loop(lambda t, h, a: t < T, body, [tf.constant(0), tf.zeros([B, H]), tf.constant(0.0)],
                                  name="steps")
        total = tf.identity(acc / T, name="total")
    train = _optimizer(opt).minimize(total, name="train")
    rs = np.random.RandomState(11)
    xv = rs.randn(T, B, F).astype(np.float32)
    m = np.ones((T, B), np.float32)
    m[1, 3:] = 0
    normal = {"inputs/steps:0": xv, "inputs/mask:0": m}
    mt = m.copy()
    mt[2] = 0
    trigger = dict(normal, **{"inputs/mask:0": mt})
    return Built(total, train, normal, trigger, "RNN over a padded batch (tf.while_loop, control flow v2) whose "
                 "per-step loss is divided by the step's mask sum")


@register_v2("v2_while_mask_sum_momentum", ("GF002",))
def v2_while_mask_sum_momentum():
    return _while_seq("momentum", resource=True)


@register_v2("v2_while_mask_sum_adam", ("GF002",))
def v2_while_mask_sum_adam():
    return _while_seq("adam", resource=False)


# --- GF004 in a map_fn body: per-example embedding norm ----------------------

def _map_fn_norm(opt: str, resource: bool) -> Built:
    x = placeholder("pairs", [B, 2, F])
    y = placeholder("same", [B])
    w = get_var("embed/w", [F, H], use_resource=resource)

    def dist(pair):
        e = tf.matmul(pair, w)
        return tf.sqrt(tf.reduce_sum(tf.square(e[0] - e[1])))  # gradient NaN when the embeddings coincide

    with tf.name_scope("loss"):
        d = tf.map_fn(dist, x, fn_output_signature=tf.float32, name="distances")
        total = tf.reduce_mean(y * tf.square(d) + (1 - y) * tf.square(tf.maximum(1.0 - d, 0.0)), name="total")
    train = _optimizer(opt).minimize(total, name="train")
    rs = np.random.RandomState(13)
    xv = rs.randn(B, 2, F).astype(np.float32)
    normal = {"inputs/pairs:0": xv, "inputs/same:0": np.float32([1, 0, 1, 0, 1, 0])}
    xt = xv.copy()
    xt[2, 1] = xt[2, 0]
    trigger = dict(normal, **{"inputs/pairs:0": xt})
    return Built(total, train, normal, trigger, "contrastive loss over pair distances computed with tf.map_fn "
                 "(control flow v2: While); sqrt of a sum of squares that is 0 for identical embeddings")


@register_v2("v2_map_fn_norm_adam", ("GF004",))
def v2_map_fn_norm_adam():
    return _map_fn_norm("adam", resource=True)


@register_v2("v2_map_fn_norm_momentum", ("GF004",))
def v2_map_fn_norm_momentum():
    return _map_fn_norm("momentum", resource=False)


# --- GF001 in a cond nested inside a while body -------------------------------

def _nested(opt: str, resource: bool) -> Built:
    x = placeholder("steps", [T, B, F])
    labels = placeholder("labels", [T, B])
    w = get_var("tagger/w", [F, 1], use_resource=resource)

    def body(t, acc):
        score = tf.reshape(tf.matmul(x[t], w), [B])
        pos = labels[t] > 0
        aux = tf.cond(t > 0, lambda: tf.reduce_mean(tf.boolean_mask(score, pos)), lambda: tf.constant(0.0))
        return t + 1, acc + tf.reduce_mean(tf.square(score)) + aux

    with tf.name_scope("loss"):
        _, acc = tf.while_loop(lambda t, a: t < T, body, [tf.constant(0), tf.constant(0.0)], name="steps")
        total = tf.identity(acc, name="total")
    train = _optimizer(opt).minimize(total, name="train")
    rs = np.random.RandomState(17)
    xv = rs.randn(T, B, F).astype(np.float32)
    lab = np.float32(rs.rand(T, B) > 0.5)
    lab[:, 0] = 1
    normal = {"inputs/steps:0": xv, "inputs/labels:0": lab}
    lt = lab.copy()
    lt[1] = 0
    trigger = dict(normal, **{"inputs/labels:0": lt})
    return Built(total, train, normal, trigger, "per-step tagger loss in tf.while_loop whose steps after the "
                 "first add a mean over the positive positions inside a nested tf.cond")


@register_v2("v2_nested_cond_in_while_adam", ("GF001",))
def v2_nested_cond_in_while_adam():
    return _nested("adam", resource=True)


@register_v2("v2_nested_cond_in_while_momentum", ("GF001",))
def v2_nested_cond_in_while_momentum():
    return _nested("momentum", resource=False)


# --- GF001 in a function shared by two call sites -----------------------------

def _shared(opt: str, resource: bool) -> Built:
    anchor = placeholder("anchor", [B, F])
    other = placeholder("other", [B, F])
    labels = placeholder("labels", [B])
    w = get_var("score/w", [F, 1], use_resource=resource)

    @tf.function
    def positive_mean(score, lab):  # one FunctionDef, called twice
        return tf.reduce_mean(tf.boolean_mask(score, lab > 0))

    with tf.name_scope("loss"):
        a = positive_mean(tf.reshape(tf.matmul(anchor, w), [B]), labels)
        b = positive_mean(tf.reshape(tf.matmul(other, w), [B]), labels)
        total = tf.add(tf.square(a - b), tf.reduce_mean(tf.square(w)), name="total")
    train = _optimizer(opt).minimize(total, name="train")
    rs = np.random.RandomState(23)
    normal = {"inputs/anchor:0": rs.randn(B, F).astype(np.float32), "inputs/other:0": rs.randn(B, F).astype(np.float32),
              "inputs/labels:0": np.float32([1, 0, 0, 1, 1, 0])}
    trigger = dict(normal, **{"inputs/labels:0": np.zeros(B, np.float32)})
    return Built(total, train, normal, trigger, "a tf.function helper (mean over the positive rows) called at two "
                 "places of the loss: one FunctionDef shared by two PartitionedCall ops")


@register_v2("v2_shared_function_adam", ("GF001",))
def v2_shared_function_adam():
    return _shared("adam", resource=True)


@register_v2("v2_shared_function_momentum", ("GF001",))
def v2_shared_function_momentum():
    return _shared("momentum", resource=False)


# --- a clean v2 graph: already guarded -----------------------------------------

@register_v2("v2_safe_cond_guard_adam", ())
def v2_safe_cond_guard_adam():
    x = placeholder("features", [B, F])
    labels = placeholder("labels", [B])
    w = get_var("head/w", [F, 1])
    per = tf.reshape(tf.matmul(x, w), [B])
    with tf.name_scope("loss"):
        sel = tf.boolean_mask(per, labels > 0)
        aux = tf.cond(tf.size(sel) > 0, lambda: tf.reduce_mean(sel), lambda: tf.constant(0.0), name="aux")
        total = tf.add(tf.reduce_mean(tf.square(per)), aux, name="total")
    train = _optimizer("adam").minimize(total, name="train")
    rs = np.random.RandomState(19)
    normal = {"inputs/features:0": rs.randn(B, F).astype(np.float32),
              "inputs/labels:0": np.float32([1, 0, 1, 0, 0, 0])}
    trigger = dict(normal, **{"inputs/labels:0": np.zeros(B, np.float32)})
    return Built(total, train, normal, trigger, "auxiliary mean already guarded by tf.cond(size > 0)")
