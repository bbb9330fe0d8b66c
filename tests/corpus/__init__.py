"""Realistic TF1 training graphs for graphfix tests.

Every case is a small but real model (a few variables, a batch of 4-8 rows,
an optimizer ``.minimize(loss, name="train")`` and an initializer named
``init``) built with raw TF1 ops in graph mode.  Each case comes with two feed
dicts: ``feeds_normal`` on which loss and gradients are finite, and
``feeds_trigger`` on which the hazard named by ``codes`` really fires in the
installed TensorFlow (non-finite loss or gradient), except for cases flagged
``hidden_on_tf2`` (see :class:`Case`).  Safe cases (``codes == ()``) stay
finite on their trigger feeds too.

Usage::

    from tests.corpus import build, unsafe_cases, safe_cases
    from tests.corpus.runner import run_case

    case = build("detection_boolean_mask_momentum")
    out = run_case(case, feeds="trigger")

Builders are deterministic: building a case twice gives byte-identical
``graph_def.SerializeToString(deterministic=True)``.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Callable

import numpy as np
import tensorflow as tf

# Raw TF1 graph mode with v1 control flow (Switch/Merge, not If/While).
tf.compat.v1.disable_eager_execution()
tf.compat.v1.disable_control_flow_v2()

HAZARD_CODES = ("GF001", "GF002", "GF003", "GF004", "GF005", "GF006", "GF007", "GF008", "GF009", "GF010", "GF011")
# The corpus is run with every rule, the opt-in ones (GF001, GF002, GF009, GF011) too.
ALL_RULES = ("ALL",)


@dataclasses.dataclass
class Case:
    name: str  # e.g. "detection_boolean_mask_momentum"
    codes: tuple[str, ...]  # hazard codes graphfix should find; () for safe cases
    graph_def: "tf.compat.v1.GraphDef"  # graph.as_graph_def() of the built graph
    meta_graph_def: "tf.compat.v1.MetaGraphDef"  # export_meta_graph(graph=g) of the same graph
    loss: str  # loss tensor name, e.g. "loss/total:0"
    train_op: str | None  # train op node name ("train"), None for forward-only cases
    init_op: str  # variable initializer op name, always "init"
    variables: tuple[str, ...]  # trainable variable node names (sorted)
    feeds_normal: dict[str, np.ndarray]  # placeholder tensor name -> value; hazard does not fire
    feeds_trigger: dict[str, np.ndarray]  # hazard fires
    description: str
    # Extra field (defaulted, so the contract above is unchanged): True when the
    # hazard is a gradient hazard that TF 2.x CPU kernels happen to mask
    # (masked Sqrt/Rsqrt/Reciprocal give a 0 gradient when the incoming
    # gradient is exactly 0), while TF 1.x kernels and XLA give NaN.  For these
    # cases the trigger feed is finite on the installed TF; graphfix must still
    # find and fix them.
    hidden_on_tf2: bool = False
    # Extra field: codes whose *pattern* the graph also contains, so a
    # detector that reports them is not wrong (e.g. Log(Softmax) inside a
    # where is GF003 and also GF005; y * log(softmax) is GF005 and has the
    # Mul(weight, term) shape of GF006).  ``codes`` are the ones that must be
    # found; findings should be a subset of ``codes + may_also_match``.
    may_also_match: tuple[str, ...] = ()
    # Extra field: why graphfix cannot repair this case yet (the tests that need
    # the repair are expected to fail, not strictly); "" for every other case.
    known_gap: str = ""


@dataclasses.dataclass
class Built:
    """What a family builder returns from inside its graph."""

    loss: tf.Tensor
    train_op: tf.Operation | None
    feeds_normal: dict[str, np.ndarray]
    feeds_trigger: dict[str, np.ndarray]
    description: str


CASES: dict[str, Callable[[], Case]] = {}


def register(
    name: str,
    codes: tuple[str, ...] = (),
    *,
    hidden_on_tf2: bool = False,
    may_also_match: tuple[str, ...] = (),
    known_gap: str = "",
):
    """Register ``fn`` (which builds ops in the default graph and returns a
    :class:`Built`) as case ``name``.  The wrapper creates the graph, sets the
    graph seed, adds the ``init`` op and exports GraphDef/MetaGraphDef."""
    codes = tuple(codes)
    may_also_match = tuple(may_also_match)
    if set(codes) & set(may_also_match):
        raise ValueError(f"{name}: may_also_match repeats a code of codes")
    for code in codes + may_also_match:
        if code not in HAZARD_CODES:
            raise ValueError(f"{name}: unknown hazard code {code}")
    if name in CASES:
        raise ValueError(f"duplicate corpus case {name}")

    def decorator(fn: Callable[[], Built]) -> Callable[[], Case]:
        def builder() -> Case:
            graph = tf.Graph()
            with graph.as_default():
                tf.compat.v1.set_random_seed(0)
                built = fn()
                tf.compat.v1.variables_initializer(tf.compat.v1.global_variables(), name="init")
                variables = tuple(sorted(v.op.name for v in tf.compat.v1.trainable_variables()))
            graph_def = graph.as_graph_def()
            meta_graph_def = _canonical_meta_graph(tf.compat.v1.train.export_meta_graph(graph=graph))
            return Case(
                name=name,
                codes=codes,
                graph_def=graph_def,
                meta_graph_def=meta_graph_def,
                loss=built.loss.name,
                train_op=None if built.train_op is None else built.train_op.name,
                init_op="init",
                variables=variables,
                feeds_normal=dict(built.feeds_normal),
                feeds_trigger=dict(built.feeds_trigger),
                description=" ".join(built.description.split()),
                hidden_on_tf2=hidden_on_tf2,
                may_also_match=may_also_match,
                known_gap=known_gap,
            )

        builder.__name__ = fn.__name__
        builder.__qualname__ = fn.__qualname__
        builder.__doc__ = fn.__doc__
        builder.case_name = name
        builder.codes = codes
        builder.hidden_on_tf2 = hidden_on_tf2
        builder.may_also_match = may_also_match
        builder.known_gap = known_gap
        CASES[name] = builder
        return builder

    return decorator


def _canonical_meta_graph(meta):
    """Re-serialise the control-flow context protos stored as bytes in the
    collections with deterministic map order (TF writes their
    ``external_values`` maps in hash order, which varies between processes)."""
    from tensorflow.core.protobuf import control_flow_pb2

    kinds = {"cond_context": control_flow_pb2.CondContextDef, "while_context": control_flow_pb2.WhileContextDef}
    for key, proto_cls in kinds.items():
        if key not in meta.collection_def:
            continue
        values = meta.collection_def[key].bytes_list.value
        for i, raw in enumerate(values):
            msg = proto_cls()
            msg.ParseFromString(raw)
            values[i] = msg.SerializeToString(deterministic=True)
    return meta


def build(name: str) -> Case:
    """Build case ``name`` (a fresh graph every call)."""
    try:
        builder = CASES[name]
    except KeyError:
        raise KeyError(f"unknown corpus case {name!r}; known: {sorted(CASES)}") from None
    return builder()


_BUILT: dict[str, Case] = {}


def shared(name: str) -> Case:
    """Case ``name`` built once per test process, handed out as a copy.

    Building a case costs a TensorFlow graph construction and a MetaGraphDef
    export (tens of milliseconds to a second); a dozen test files use the same
    cases.  The copy (fresh protos, fresh feed arrays) means a test that edits
    its case cannot change what the next test gets.  ``build`` still builds
    from scratch, for the test that the builders are deterministic.
    """
    if name not in _BUILT:
        _BUILT[name] = build(name)
    return copy_case(_BUILT[name])


def copy_case(case: Case) -> Case:
    """A copy of ``case`` that shares no mutable state with it."""
    graph_def = type(case.graph_def)()
    graph_def.CopyFrom(case.graph_def)
    meta_graph_def = type(case.meta_graph_def)()
    meta_graph_def.CopyFrom(case.meta_graph_def)
    return dataclasses.replace(
        case,
        graph_def=graph_def,
        meta_graph_def=meta_graph_def,
        feeds_normal={k: np.array(v, copy=True) for k, v in case.feeds_normal.items()},
        feeds_trigger={k: np.array(v, copy=True) for k, v in case.feeds_trigger.items()},
    )


def unsafe_cases() -> list[str]:
    """Names of cases with at least one hazard code, sorted."""
    return sorted(n for n, b in CASES.items() if b.codes)


def safe_cases() -> list[str]:
    """Names of cases that graphfix must leave alone, sorted."""
    return sorted(n for n, b in CASES.items() if not b.codes)


def params(names):
    """``names`` as pytest parameters, a case with a ``known_gap`` marked
    ``xfail(strict=False)`` with that reason."""
    import pytest

    return [pytest.param(n, marks=pytest.mark.xfail(strict=False, reason=CASES[n].known_gap))
            if CASES[n].known_gap else n for n in names]


def cases_with_code(code: str) -> list[str]:
    """Names of cases expected to carry hazard ``code``, sorted."""
    return sorted(n for n, b in CASES.items() if code in b.codes)


# ---------------------------------------------------------------------------
# small model-building helpers shared by the family modules


def _seed(name: str) -> int:
    # Stable across processes (unlike hash()).
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def _full_name(name: str) -> str:
    scope = tf.compat.v1.get_variable_scope().name
    return f"{scope}/{name}" if scope else name


def glorot(name: str):
    return tf.compat.v1.glorot_uniform_initializer(seed=_seed(_full_name(name)))


def positive_uniform(name: str, low: float = 0.05, high: float = 0.5):
    return tf.compat.v1.random_uniform_initializer(low, high, seed=_seed(_full_name(name)))


def get_var(name, shape, initializer=None, *, use_resource=True, trainable=True):
    """``tf.compat.v1.get_variable`` with a seeded Glorot default."""
    if initializer is None:
        initializer = glorot(name)
    return tf.compat.v1.get_variable(
        name,
        shape,
        dtype=tf.float32,
        initializer=initializer,
        use_resource=use_resource,
        trainable=trainable,
    )


def dense(
    x,
    units: int,
    scope: str,
    *,
    activation=None,
    use_resource=True,
    use_bias=True,
    kernel_init=None,
    bias_init: float = 0.0,
    reuse=None,
):
    """A fully connected layer from raw ops: ``activation(x @ kernel + bias)``."""
    with tf.compat.v1.variable_scope(scope, reuse=reuse):
        kernel = get_var(
            "kernel",
            [int(x.shape[-1]), units],
            kernel_init if kernel_init is not None else glorot("kernel"),
            use_resource=use_resource,
        )
        y = tf.matmul(x, kernel)
        if use_bias:
            bias = get_var(
                "bias",
                [units],
                tf.compat.v1.constant_initializer(bias_init),
                use_resource=use_resource,
            )
            y = tf.nn.bias_add(y, bias)
        if activation is not None:
            y = activation(y)
    return y


def placeholder(name: str, shape, dtype=tf.float32):
    """Placeholder under the ``inputs`` name scope (tensor ``inputs/<name>:0``)."""
    with tf.name_scope("inputs/"):
        return tf.compat.v1.placeholder(dtype, shape, name=name)


def scope_vars(scope: str):
    return tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES, scope=scope)


# Register the families (import order is irrelevant; names are unique).
from . import (  # noqa: E402,F401
    chained,
    detection,
    embedding,
    entropy,
    gan,
    masked,
    metric,
    multitask,
    reach,
    safe,
    seq2seq,
    softmax_ce,
    stable_forms,
    where_grad,
)
