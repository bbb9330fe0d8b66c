"""Op-type sets more than one layer needs (variables, optimizer updates).

Each name is checked against TensorFlow's op registry by tests/test_op_tables.py.
"""
from __future__ import annotations

# Ops that own a variable's storage (ref variables and resource handles).
VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp")

# Optimizer update ops: ApplyAdam, ResourceApplyAdam, SparseApplyFtrl, …
APPLY_PREFIXES = ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply")


def is_apply(op: str) -> bool:
    """Whether ``op`` is an optimizer update (``Apply*`` and its resource/sparse forms)."""
    return op.startswith(APPLY_PREFIXES)
