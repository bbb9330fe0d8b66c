"""Running a graph in TensorFlow: the one runner ``graphfix verify`` and the
tests use.

:class:`GraphRunner` imports a model once (a MetaGraphDef with its while/cond
contexts through ``import_meta_graph``, else ``import_graph_def``), with its
devices cleared so a graph placed on absent GPUs runs here and unseeded random
ops given a fixed seed so two graphs draw the same numbers.  It fetches the
losses, ``tf.gradients`` of each loss w.r.t. every variable, the gradient each
optimizer ``Apply*`` op reads, and every variable after the train ops ran, and
reruns from any variable state.  :func:`execute` is the one-shot form.
"""
from __future__ import annotations

import dataclasses
import os
import zlib

import numpy as np

from graphfix.core import tfimport
from graphfix.core.errors import GraphfixError
from graphfix.core.model import Model
from graphfix.core.optypes import VARIABLE_OPS, is_apply
from graphfix.core.tfimport import protos
from graphfix.core.tfimport import tf as _tf
from graphfix.patch.funcgrad import process_functions_kept, route_call_gradients
from graphfix.patch.scratch import v1_control_flow

_CONTEXT_KEYS = ("while_context", "cond_context")


@dataclasses.dataclass
class Execution:
    """Values from one run of a graph on one feed."""

    loss: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]           # d loss / d variable (tf.gradients on the imported graph)
    applied: dict[str, np.ndarray]         # the gradient each optimizer Apply* op reads
    variables: dict[str, np.ndarray]       # variable values after `steps` train steps
    steps: int

    def finite(self) -> bool:
        return all(np.all(np.isfinite(v)) for d in (self.loss, self.grads, self.applied, self.variables)
                   for v in d.values())


class RunError(Exception):
    """TensorFlow refused to run the graph on a feed (shape mismatch, CheckNumerics, …)."""


# ------------------------------------------------------------------ discovery

def session_config():
    """The ConfigProto every verification session runs under.

    One thread, and the session's own pool: a train step over ref variables
    reads a variable another apply op may already have updated in place, so
    the order of the ops is part of the result.  Without
    ``use_per_session_threads`` the process-wide pool of the first session
    (any size) would run every later one, and two runs of one graph could
    disagree.  No Grappler: the graphs run as written (its rewrites may
    reorder float arithmetic differently in the original and the fixed
    graph), and each new set of fetches starts in a millisecond instead of ten."""
    config = _tf().compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1,
                                         use_per_session_threads=True)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    # A blocking op (a queue dequeue that nothing here fills) fails after a
    # minute instead of hanging the process, which a signal cannot interrupt.
    config.operation_timeout_in_ms = 60_000
    return config


_QUEUE_READS = ("QueueDequeue", "ReaderRead")


def _queue_input(losses) -> str | None:
    """The first input-queue read (``QueueDequeueManyV2``, ``ReaderReadV2``)
    the loss tensors depend on, as ``type 'name'``, or None."""
    todo, seen = [t.op for t in losses], set()
    while todo:
        op = todo.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type.startswith(_QUEUE_READS):
            return f"{op.type} {op.name!r}"
        todo.extend(t.op for t in op.inputs)
    return None


def _producer(t):
    """The op that makes tensor ``t``, looking through Identity ops."""
    op = t.op
    while op.type == "Identity":
        op = op.inputs[0].op
    return op


def _restored(op) -> bool:
    """``op`` assigns a value a Restore op read from a checkpoint."""
    return len(op.inputs) > 1 and _producer(op.inputs[1]).type.startswith("Restore")


def _prepared(model):
    """(graph_def or meta_graph copy for import, use_meta): devices cleared so a
    graph placed on absent GPUs runs here, unseeded random ops given a fixed
    seed so both graphs draw the same numbers."""
    meta = model.meta_graph
    use_meta = meta is not None and any(k in meta.collection_def for k in _CONTEXT_KEYS)
    if use_meta:
        msg = type(meta)()
        msg.CopyFrom(meta)
        gd = msg.graph_def
    else:
        msg = type(model.graph_def)()
        msg.CopyFrom(model.graph_def)
        gd = msg
    for n in gd.node:
        n.device = ""
        if "seed" in n.attr and "seed2" in n.attr and n.attr["seed"].i == 0 and n.attr["seed2"].i == 0:
            n.attr["seed"].i = 87654321
            n.attr["seed2"].i = zlib.crc32(n.name.encode()) & 0x7FFFFFFF
    return msg, use_meta


class GraphRunner:
    """One graph imported once, with fetches for the loss, gradients, applied
    gradients and variables, and a session that reruns from a given state."""

    def __init__(self, model, losses: list[str], train_ops: list[str], label: str):
        tf = self.tf = _tf()
        op_def_registry = tfimport.module("tensorflow.python.framework.op_def_registry")

        self.label = label
        self.notes: list[str] = []
        msg, use_meta = _prepared(model)
        g = self.graph = tf.Graph()
        with g.as_default(), v1_control_flow():
            try:
                if use_meta:
                    tf.compat.v1.train.import_meta_graph(msg, clear_devices=True)
                else:
                    tf.compat.v1.import_graph_def(msg, name="")
            except (ValueError, TypeError, KeyError, tf.errors.OpError) as e:
                raise GraphfixError(f"{label}: TensorFlow cannot import the graph: {first_line(e)}") from None
            self.var_names = sorted(op.name for op in g.get_operations() if op.type in VARIABLE_OPS)
            self.var_t = [g.get_tensor_by_name(v + ":0") for v in self.var_names]
            self.readers, self.assigns, self.assign_ph, self.is_init = {}, {}, {}, {}
            with g.name_scope("graphfix_verify"):
                for v, t in zip(self.var_names, self.var_t):
                    op = g.get_operation_by_name(v)
                    dtype = tf.as_dtype(op.get_attr("dtype"))
                    ph = tf.compat.v1.placeholder(dtype)
                    if t.dtype == tf.resource:
                        self.readers[v] = tf.raw_ops.ReadVariableOp(resource=t, dtype=dtype)
                        self.assigns[v] = tf.raw_ops.AssignVariableOp(resource=t, value=ph)
                    else:
                        self.readers[v] = tf.identity(t)
                        self.assigns[v] = tf.compat.v1.assign(t, ph, validate_shape=False)
                    self.assign_ph[v] = ph
                    self.is_init[v] = (tf.raw_ops.VarIsInitializedOp(resource=t) if t.dtype == tf.resource
                                       else tf.raw_ops.IsVariableInitialized(ref=t))
            self.loss_t = {}
            for name in losses:
                try:
                    self.loss_t[name] = g.get_tensor_by_name(name)
                except (KeyError, ValueError):
                    raise GraphfixError(f"{label}: has no loss tensor {name!r}") from None
            queue = _queue_input(list(self.loss_t.values()))
            if queue is not None:
                raise GraphfixError(f"{label}: the loss reads its batch from an input queue ({queue}) that "
                                    "nothing fills here; verify feeds placeholders, so it needs a graph whose "
                                    "batch comes from placeholders")
            self.grads = {}
            route_call_gradients(g)  # imported function calls: differentiated as TensorFlow does in graph mode

            try:
                functions = (msg.graph_def if use_meta else msg).library.function
                with g.name_scope("graphfix_verify"), process_functions_kept(functions):
                    for name, lt in self.loss_t.items():
                        for v, gr in zip(self.var_names, tf.compat.v1.gradients(lt, self.var_t)):
                            if gr is None:
                                continue
                            if isinstance(gr, tf.IndexedSlices):
                                gr = tf.convert_to_tensor(gr)
                            self.grads[f"{name} / {v}"] = gr
            except Exception as e:  # noqa: BLE001 — e.g. v1 while loops imported without their contexts
                self.grads = {}
                self.notes.append(f"{label}: gradients w.r.t. the variables not compared (tf.gradients on the "
                                  f"imported graph fails: {first_line(e)}); the applied gradients still are")
            self.applied = {}
            for op in g.get_operations():
                if is_apply(op.type):
                    od = op_def_registry.get(op.type)
                    idx = next((i for i, a in enumerate(od.input_arg) if a.name in ("grad", "delta")), None)
                    if idx is not None:
                        self.applied[op.name] = op.inputs[idx]
            self.train = []
            for name in train_ops:
                try:
                    self.train.append(g.get_operation_by_name(name))
                except KeyError:
                    raise GraphfixError(f"{label}: has no train op {name!r}") from None
            self.init = self._init_op(use_meta)
            self.tables = [op for op in g.get_operations()
                           if op.type.startswith("InitializeTable") or op.type == "LookupTableImportV2"]
            self.feedable = {op.name + ":0" for op in g.get_operations()
                             if op.type in ("Placeholder", "PlaceholderWithDefault")}
        self.sess = tf.compat.v1.Session(graph=g, config=session_config())
        if self.init is not None:
            self._run(self.init)
        self._zero_uninitialised()
        if self.tables:  # lookup tables the loss may read; a SavedModel's asset files from its assets/
            try:
                self._run(self.tables, {g.get_tensor_by_name(k): v for k, v in _asset_feeds(model).items()})
            except (RunError, KeyError, ValueError) as e:
                self.notes.append(f"{label}: lookup tables not initialised: {e}")

    def _zero_uninitialised(self) -> None:
        """A variable the graph has no initialiser for (a slot of a graph built
        twice in one process) starts at zeros, as an optimizer's slots do."""
        if not self.is_init:
            return
        done = self._run(self.is_init)
        for v in sorted(k for k, ok in done.items() if not ok):
            shape = self.graph.get_operation_by_name(v).get_attr("shape")
            dims = [d.size for d in shape.dim] if not shape.unknown_rank else None
            if dims is None or any(d < 0 for d in dims):
                raise GraphfixError(f"{self.label}: variable {v!r} has no initialiser and no static shape")
            self._run(self.assigns[v], {self.assign_ph[v]: np.zeros(dims, self.assign_ph[v].dtype.as_numpy_dtype)})
            self.notes.append(f"{self.label}: variable {v} has no initialiser in the graph; started at zeros")

    def _init_op(self, use_meta):
        """One op that initialises every variable: with the MetaGraphDef's
        contexts, the initialisers of its variable collections; for the
        variables they miss (or without contexts), each variable's own
        initial assign (``v/Assign``, never a Saver's ``save/Assign``, which
        reads checkpoint files that are not here); for any still left, the
        graph's ``init`` op.  A user's ``init`` op alone is not enough: made
        before the optimizer, it misses the slots; a graph built twice in one
        process has variables no collection lists."""
        tf, g = self.tf, self.graph
        ops, covered = [], set()
        if use_meta:
            vs = tf.compat.v1.global_variables() + tf.compat.v1.local_variables()
            if vs:
                ops.append(tf.compat.v1.variables_initializer(vs, name="graphfix_verify/init_collections"))
                covered = {v.op.name for v in vs}
        own = {}
        for op in g.get_operations():
            if op.type in ("Assign", "AssignVariableOp") and op.name.endswith("/Assign") and not _restored(op):
                own.setdefault(_producer(op.inputs[0]).name, op)
        left = [v for v in self.var_names if v not in covered]
        ops += [own[v] for v in left if v in own]
        if any(v not in own for v in left):
            try:
                ops.append(g.get_operation_by_name("init"))
            except KeyError:
                if not ops:
                    raise GraphfixError(f"{self.label}: cannot initialise the variables: no 'init' op and no "
                                        "initial assigns") from None
        return tf.group(*ops, name="graphfix_verify/init") if ops else None

    def _run(self, fetches, feed=None):
        try:
            return self.sess.run(fetches, feed)
        except self.tf.errors.OpError as e:
            raise RunError(first_line(e.message)) from None

    def state(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self._run(self.readers).items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        ops, fd = [], {}
        for k, v in state.items():
            if k in self.assigns:
                ops.append(self.assigns[k])
                fd[self.assign_ph[k]] = v
        if ops:
            self._run(ops, fd)

    def feed_dict(self, feed: dict[str, np.ndarray], placeholders_only: bool = True) -> dict:
        """``feed`` (tensor name -> value) keyed by this graph's tensors; with
        ``placeholders_only`` the names that are not placeholders here are left out."""
        g = self.graph
        return {g.get_tensor_by_name(k): v for k, v in feed.items() if not placeholders_only or k in self.feedable}

    def losses(self, feed: dict[str, np.ndarray], placeholders_only: bool = True) -> dict[str, np.ndarray]:
        """The losses at the current variable values."""
        return {k: np.asarray(v) for k, v in self._run(self.loss_t, self.feed_dict(feed, placeholders_only)).items()}

    def train_on(self, feeds, placeholders_only: bool = True) -> dict[str, np.ndarray]:
        """Run every train op once per feed in ``feeds``, from the current
        state; the variables afterwards."""
        for feed in feeds:
            fd = self.feed_dict(feed, placeholders_only)
            for op in self.train:
                self._run(op, fd)
        return self.state()

    def execute(self, feed: dict[str, np.ndarray], state, steps: int = 1, placeholders_only: bool = True):
        """From ``state``: the losses, gradients and applied gradients on
        ``feed``, then ``steps`` runs of the train ops and the variables after."""
        self.set_state(state)
        fd = self.feed_dict(feed, placeholders_only)
        loss_v, grad_v, applied_v = self._run([self.loss_t, self.grads, self.applied], fd)
        done = 0
        if self.train:
            for _ in range(steps):
                for op in self.train:
                    self._run(op, fd)
            done = steps
        var_v = self.state()
        return Execution(loss={k: np.asarray(v) for k, v in loss_v.items()},
                         grads={k: np.asarray(v) for k, v in grad_v.items()},
                         applied={k: _dense(v) for k, v in applied_v.items()}, variables=var_v, steps=done)

    def close(self):
        self.sess.close()


def _asset_feeds(model) -> dict[str, str]:
    """Asset tensor -> path of the file in the SavedModel's assets/ directory."""
    meta = model.meta_graph
    if model.kind != "saved_model" or meta is None:
        return {}
    assets = list(meta.asset_file_def)
    if "saved_model_assets" in meta.collection_def:  # the TF1 Builder keeps them in a collection
        meta_graph_pb2 = protos().meta_graph_pb2

        for any_ in meta.collection_def["saved_model_assets"].any_list.value:
            a = meta_graph_pb2.AssetFileDef()
            if any_.Unpack(a):
                assets.append(a)
    root = model.path if os.path.isdir(model.path) else os.path.dirname(model.path)
    return {a.tensor_info.name: os.path.join(root, "assets", a.filename) for a in assets if a.tensor_info.name}


def _dense(v):
    if hasattr(v, "values") and hasattr(v, "indices"):
        return np.asarray(v.values)
    return np.asarray(v)


def first_line(e) -> str:
    """The informative line of an error (TensorFlow's start with "Graph execution error:")."""
    lines = [ln.strip() for ln in str(e).strip().splitlines()]
    skip = ("Graph execution error", "Detected at node", "Node:", "defined at", "[[", "File ", "Traceback")
    useful = [ln for ln in lines if ln and not ln.startswith(skip)]
    if useful:
        return useful[0]
    return lines[0] if lines and lines[0] else type(e).__name__




def execute(graph, feeds: dict, losses: list[str], train_op: str | None = None, steps: int = 1) -> Execution:
    """Import ``graph`` (a Model, GraphDef or MetaGraphDef) into a fresh graph,
    run it on ``feeds`` and, with ``train_op``, train ``steps`` times."""
    runner = GraphRunner(Model.of(graph), losses, [train_op] if train_op else [], "graph")
    try:
        return runner.execute({k if ":" in k else k + ":0": v for k, v in feeds.items()}, runner.state(), steps)
    except RunError as e:
        raise GraphfixError(f"cannot run the graph: {e}") from None
    finally:
        runner.close()
