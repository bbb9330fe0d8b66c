"""Differential execution: run the original and the fixed graph in TensorFlow.

The contract every rewrite must keep (and the one ``graphfix verify`` checks):
on normal feeds the loss, its gradients and one optimizer step agree with
the original; on triggering feeds the fixed graph's loss and gradients are
finite and a train step leaves every variable finite.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from graphfix.errors import GraphfixError
from graphfix.tfimport import tf as _tf

VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp")


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


def _grad_input_index(op_def) -> int | None:
    for i, arg in enumerate(op_def.input_arg):
        if arg.name in ("grad", "delta"):
            return i
    return None


def execute(graph_def, feeds: dict, losses: list[str], train_op: str | None = None, steps: int = 1,
            init: str | None = None) -> Execution:
    """Import ``graph_def`` into a fresh graph and run it on ``feeds``."""
    tf = _tf()
    from tensorflow.python.framework import op_def_registry

    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        variables = sorted(op.name for op in g.get_operations() if op.type in VARIABLE_OPS)
        var_t = [g.get_tensor_by_name(v + ":0") for v in variables]
        readers = {}
        for v, t in zip(variables, var_t):
            if t.dtype == tf.resource:
                dtype = g.get_operation_by_name(v).get_attr("dtype")
                readers[v] = tf.raw_ops.ReadVariableOp(resource=t, dtype=dtype)
            else:
                readers[v] = t
        loss_t = {name: g.get_tensor_by_name(name) for name in losses}
        grads = {}
        for name, lt in loss_t.items():
            for v, gr in zip(variables, tf.compat.v1.gradients(lt, var_t)):
                if gr is not None:
                    grads[f"{name} / {v}"] = gr
        applied = {}
        for op in g.get_operations():
            if op.type.startswith(("Apply", "ResourceApply")):
                idx = _grad_input_index(op_def_registry.get(op.type))
                if idx is not None:
                    applied[op.name] = op.inputs[idx]
        init_op = init
        if init_op is None:
            init_op = "init" if _has_op(g, "init") else None
        with tf.compat.v1.Session(graph=g) as sess:
            if init_op:
                sess.run(g.get_operation_by_name(init_op))
            elif variables:
                assigns = [op for op in g.get_operations()
                           if op.type in ("Assign", "AssignVariableOp") and op.name.endswith("/Assign")]
                if not assigns:
                    raise GraphfixError("cannot initialise the variables: no 'init' op and no initial assigns")
                sess.run(assigns)
            fd = {g.get_tensor_by_name(k if ":" in k else k + ":0"): v for k, v in feeds.items()}
            loss_v, grad_v, applied_v = sess.run([loss_t, grads, applied], fd)
            if train_op and steps:
                op = g.get_operation_by_name(train_op)
                for _ in range(steps):
                    sess.run(op, fd)
            var_v = sess.run(readers) if readers else {}
    return Execution(loss={k: np.asarray(v) for k, v in loss_v.items()},
                     grads={k: _dense(v) for k, v in grad_v.items()},
                     applied={k: _dense(v) for k, v in applied_v.items()},
                     variables={k: np.asarray(v) for k, v in var_v.items()}, steps=steps if train_op else 0)


def _dense(v):
    if hasattr(v, "values") and hasattr(v, "indices"):  # IndexedSlicesValue
        return np.asarray(v.values)
    return np.asarray(v)


def _has_op(g, name: str) -> bool:
    try:
        g.get_operation_by_name(name)
        return True
    except KeyError:
        return False


@dataclasses.dataclass
class Comparison:
    max_abs: float
    max_rel: float
    bit_identical: bool
    mismatched: list[str]


def compare(a: Execution, b: Execution, rtol: float = 1e-6, atol: float = 0.0) -> Comparison:
    """Max abs/rel difference between two executions over loss, grads, applied grads, variables."""
    max_abs = max_rel = 0.0
    bits = True
    bad = []
    for field in ("loss", "grads", "applied", "variables"):
        da, db = getattr(a, field), getattr(b, field)
        for key in sorted(set(da) | set(db)):
            if key not in da or key not in db:
                if field == "applied":
                    continue  # the fixed graph may name its apply ops' inputs differently — values compared below
                bad.append(f"{field}:{key} missing")
                continue
            x, y = np.asarray(da[key], np.float64), np.asarray(db[key], np.float64)
            if x.shape != y.shape:
                bad.append(f"{field}:{key} shape {x.shape} != {y.shape}")
                continue
            if not np.array_equal(np.asarray(da[key]), np.asarray(db[key]), equal_nan=True):
                bits = False
            with np.errstate(invalid="ignore", over="ignore"):
                diff = np.abs(x - y)
                diff = np.where(np.isnan(x) & np.isnan(y), 0.0, diff)
                # relative to the larger magnitude (a value 1e-30 vs 6e-8 is 100 % off, not 1e22)
                scale = np.maximum(np.abs(x), np.abs(y))
                rel = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), 0.0)
            if diff.size:
                max_abs = max(max_abs, float(np.nanmax(diff)) if not np.all(np.isnan(diff)) else np.inf)
                max_rel = max(max_rel, float(np.nanmax(rel)) if not np.all(np.isnan(rel)) else np.inf)
            if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
                bad.append(f"{field}:{key}")
    return Comparison(max_abs=max_abs, max_rel=max_rel, bit_identical=bits and not bad, mismatched=bad)


def verify(original, fixed, feeds=None, losses=None, trials: int = 3, steps: int = 1):
    """Check ``fixed`` against ``original`` (see :mod:`graphfix.verification`);
    returns a ``VerifyResult`` with ``.ok`` and ``.render(fmt)``."""
    from graphfix.verification import verify as _verify

    return _verify(original, fixed, feeds=feeds, losses=losses, trials=trials, steps=steps)


class _CallableModule(type(dataclasses)):
    """``graphfix.verify`` is both this module (``execute``, ``compare``) and the
    documented API call ``graphfix.verify(original, fixed, feeds=None)``."""

    def __call__(self, original, fixed, feeds=None, losses=None, trials: int = 3, steps: int = 1):
        return verify(original, fixed, feeds=feeds, losses=losses, trials=trials, steps=steps)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
