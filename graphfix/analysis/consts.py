"""Values of ``Const`` nodes, decoded with numpy (no TensorFlow import)."""
from __future__ import annotations

import math

import numpy as np

MAX_ELEMENTS = 1 << 24

_NP = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
       10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
_VAL_FIELD = {1: "float_val", 2: "double_val", 3: "int_val", 4: "int_val", 5: "int_val", 6: "int_val",
              9: "int64_val", 10: "bool_val", 17: "int_val", 19: "half_val", 22: "uint32_val", 23: "uint64_val"}


def const_scalar(ir, t) -> float | None:
    """The value of a one-element constant tensor ``t`` (through Identity), or None."""
    v = const_value(ir, t[0])
    if v is None or v.size != 1:
        return None
    return float(v.reshape(-1)[0])


def const_value(ir, name: str):
    """The numpy value of a Const node (through Identity), or None if not a
    constant or not decodable."""
    while ir.op(name) in ("Identity", "Snapshot"):
        name = ir.input(name, 0)[0]
    n = ir.node(name)
    if n.op != "Const" or "value" not in n.attr:
        return None
    t = n.attr["value"].tensor
    dt = _NP.get(t.dtype)
    if dt is None:
        return None
    shape = [d.size for d in t.tensor_shape.dim]
    count = math.prod(shape) if shape else 1
    if any(d < 0 for d in shape) or count > MAX_ELEMENTS:
        return None  # malformed, or too big to expand for an analysis (a splat of billions)
    try:
        if t.tensor_content:
            arr = np.frombuffer(t.tensor_content, dtype=dt).copy()
        else:
            vals = list(getattr(t, _VAL_FIELD[t.dtype]))
            if t.dtype == 19:
                arr = np.array(vals, dtype=np.uint16).view(np.float16)
            else:
                arr = np.array(vals, dtype=dt)
            if arr.size == 0:
                arr = np.zeros(count, dtype=dt)
            elif arr.size < count:
                arr = np.concatenate([arr, np.full(count - arr.size, arr[-1], dtype=dt)])
        return arr.reshape(shape)
    except (ValueError, KeyError):
        return None
