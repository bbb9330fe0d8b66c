"""Comparing two runs of a graph (:class:`graphfix.verification.runner.Execution`):
how far apart the loss, gradients, applied gradients and variables are, and
whether they are bit-identical.

The contract every rewrite must keep (and the one ``graphfix verify`` checks):
on normal feeds the loss, its gradients and one optimizer step agree with
the original; on triggering feeds the fixed graph's loss and gradients are
finite and a train step leaves every variable finite.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from graphfix.verification.runner import Execution


@dataclasses.dataclass
class Comparison:
    max_abs: float
    max_rel: float
    bit_identical: bool
    mismatched: list[str]


def _within(x, y, diff, rtol: float, atol: float) -> bool:
    """Every element of ``diff`` (``|x - y|``, 0 where both are NaN) within
    ``atol + rtol * (the tensor's largest finite magnitude)``, or ``x == y``.

    Rounding errors of a sum or a matmul are bounded relative to the
    magnitudes summed, not to the result: an element of a gradient that
    cancels to 1e-3 in a tensor whose entries reach 100 carries the rounding
    of those 100s.  Scaling by each element alone would call that a mismatch
    whenever an op must change (``log_softmax`` for ``log(softmax)``)."""
    magnitude = np.abs(x[np.isfinite(x)])
    tol = atol + rtol * (float(magnitude.max()) if magnitude.size else 0.0)
    with np.errstate(invalid="ignore"):
        return bool(np.all((diff <= tol) | (x == y)))


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
            if not _within(x, y, diff, rtol, atol):
                bad.append(f"{field}:{key}")
    return Comparison(max_abs=max_abs, max_rel=max_rel, bit_identical=bits and not bad, mismatched=bad)
