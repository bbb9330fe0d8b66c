"""The chained-repair invariant, measured: in a graph, every gradient the
optimizer applies equals ``tf.gradients`` of the loss on the same feed.

The graph's own gradient subgraph ends where non-gradient ops (clipping, loss
un-scaling) or the ``Apply*`` ops read it.  For every ``Apply*`` op we walk
back from its gradient input through element-wise post-processing to the
gradient tensor it came from (the *boundary* tensor: the graph's dL/dvar).
If each boundary tensor equals a fresh ``tf.gradients(loss, var)`` built on
the imported graph, then whatever the graph does between gradients and apply
gives the same applied gradient as it would on the fresh gradients.
Sparse applies (``indices`` + ``grad``) are compared densified.
"""
from __future__ import annotations

import re

import numpy as np

from graphfix.verification.runner import session_config

# Independent of graphfix's own index (this is what checks it): TensorFlow's
# gradient prefixes are seeded by ``<prefix>/grad_ys_N`` or ``<prefix>/Fill``;
# graphfix splices gradients in under ``…/graphfix/<CODE>[_n]/grad[_k]/``.
_SEED = re.compile(r"^((?:.*/)?gradients(?:_\d+)?)/(?:grad_ys_\d+|Fill)$")
_SPLICED = re.compile(r"/graphfix/GF\d+(?:_\d+)?/grad(?:_\d+)?/")


def spliced_prefix(name):
    m = _SPLICED.search(name)
    return name[:m.end() - 1] if m else None

APPLY = ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply")
# Post-processing between the gradients and the Apply ops that maps each
# gradient element-wise (clip_by_value, loss un-scaling, global-norm scale).
PASS = frozenset({"Identity", "Snapshot", "Mul", "RealDiv", "Div", "Cast", "Minimum", "Maximum", "ClipByValue",
                  "Neg", "CheckNumerics", "Select", "SelectV2"})

SPARSE = PASS | {"UnsortedSegmentSum", "Unique", "StridedSlice", "Shape"}


class AppliedChecker:
    """One imported graph + session; ``check(feed)`` -> list of mismatches."""

    def __init__(self, tf, graph_def, loss, rtol=1e-5, atol=1e-6):
        """``loss``: the loss tensor the graph's gradients were built from."""
        from tensorflow.python.framework import op_def_registry

        self.tf, self.rtol, self.atol = tf, rtol, atol
        real = sorted({m.group(1) for n in graph_def.node if n.op == "Fill" for m in [_SEED.match(n.name)] if m},
                      key=len, reverse=True)

        def prefix(name):
            sp = spliced_prefix(name)
            if sp is not None:
                return sp
            return next((p for p in real if name.startswith(p + "/")), None)

        g = self.graph = tf.Graph()
        self.pairs = []  # (apply op, var, graph grad tensor(s), fresh grad)
        self.unpaired = []
        with g.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
            found = []  # (apply op, var op, boundary tensors, indices input or None)
            for op in g.get_operations():
                if not op.type.startswith(APPLY):
                    continue
                od = op_def_registry.get(op.type)
                names = [a.name for a in od.input_arg]
                gi = next((i for i, a in enumerate(names) if a in ("grad", "delta")), None)
                if gi is None:
                    continue
                ii = names.index("indices") if "indices" in names else None
                var_op = op.inputs[0].op
                while var_op.type in ("Identity",):
                    var_op = var_op.inputs[0].op
                if ii is not None:  # sparse: the deduplicated (grad, indices) it applies, compared densified
                    bounds = [op.inputs[gi]]
                    gp0 = self._boundary(op.inputs[gi], prefix, through=SPARSE)
                    src = gp0[0].op.name if gp0 else None
                else:
                    bounds = self._boundary(op.inputs[gi], prefix)
                    src = bounds[0].op.name if len(bounds) == 1 else None
                if len(bounds) != 1 or src is None:
                    self.unpaired.append(f"{op.name}: {len(bounds)} gradient tensors reach it")
                    continue
                found.append((op, var_op, bounds, op.inputs[ii] if ii is not None else None))
            # One tf.gradients call for every variable: the same values as one
            # call per variable (each is d loss / d var), one backward graph.
            var_ops = sorted({v.name: v for _, v, _, _ in found}.values(), key=lambda v: v.name)
            fresh_by = {}
            if var_ops:
                with g.name_scope("applied_check"):
                    grads = tf.compat.v1.gradients(g.get_tensor_by_name(loss), [v.outputs[0] for v in var_ops])
                fresh_by = {v.name: gr for v, gr in zip(var_ops, grads)}
            for op, var_op, bounds, indices in found:
                fresh = fresh_by[var_op.name]
                if fresh is None:
                    self.unpaired.append(f"{op.name}: tf.gradients says {var_op.name} does not affect {loss}")
                    continue
                graph_grad = (bounds[0], indices)
                if isinstance(fresh, tf.IndexedSlices):
                    fresh = (fresh.values, fresh.indices, fresh.dense_shape)
                self.pairs.append((op.name, var_op.name, graph_grad, fresh, tuple(var_op.outputs[0].shape)))
            self.init = g.get_operation_by_name("init") if any(o.name == "init" for o in g.get_operations()) \
                else tf.compat.v1.global_variables_initializer()
        self.sess = tf.compat.v1.Session(graph=g, config=session_config())  # as graphfix's GraphRunner
        self.sess.run(self.init)

    @staticmethod
    def _boundary(t, prefix, through=None):
        """Gradient tensors reaching ``t`` through element-wise post-processing."""
        through = through or PASS
        out, stack, seen = [], [t], set()
        while stack:
            x = stack.pop()
            if x.name in seen:
                continue
            seen.add(x.name)
            if prefix(x.op.name) is not None:
                out.append(x)
            elif x.op.type in through:
                stack.extend(x.op.inputs)
        return sorted(out, key=lambda x: x.name)

    def check(self, feed) -> tuple[list[str], int]:
        """(mismatches, pairs compared) on ``feed`` (tensor name -> value)."""
        g = self.graph
        fd = {g.get_tensor_by_name(k): v for k, v in feed.items()}
        fetch = [((gg[0], gg[1] if gg[1] is not None else gg[0]), fr) for _, _, gg, fr, _ in self.pairs]
        vals = self.sess.run(fetch, fd)
        bad = []
        for (name, var, gg, _, shape), ((gv, gi), fr) in zip(self.pairs, vals):
            gi = gi if gg[1] is not None else None
            if gi is not None or isinstance(fr, tuple):
                a = _dense(gv, gi, shape)
                b = _dense(fr[0], fr[1], shape) if isinstance(fr, tuple) else np.asarray(fr)
            else:
                a, b = np.asarray(gv), np.asarray(fr)
            if a.shape != b.shape or not np.allclose(a, b, rtol=self.rtol, atol=self.atol, equal_nan=True):
                with np.errstate(invalid="ignore"):
                    diff = np.nanmax(np.abs(a - b)) if a.shape == b.shape else "shape"
                bad.append(f"{name} ({var}): applied gradient != tf.gradients (max diff {diff}, "
                           f"applied finite: {bool(np.all(np.isfinite(a)))}, fresh finite: "
                           f"{bool(np.all(np.isfinite(b)))})")
        return bad, len(vals)

    def close(self):
        self.sess.close()


def _dense(values, indices, shape):
    values = np.asarray(values)
    if indices is None:
        return values
    out = np.zeros(shape, values.dtype)
    np.add.at(out, np.asarray(indices), values)
    return out
